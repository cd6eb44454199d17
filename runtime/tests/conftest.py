from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def catalog_setup(db: None, make_user: Callable[..., Any], make_team: Callable[..., Any]) -> dict[str, Any]:
    """Team `payments` (maintainer alice) owning agent `billing-bot` and MCP tool `github` (capabilities
    create_issue, delete_repo), and a grant billing-bot -> github for create_issue in production."""
    from catalog import services
    from catalog.models import ToolGrant
    from portal.roles import SECURITY_REVIEWER

    alice = make_user("alice")
    sec = make_user("sec", roles=[SECURITY_REVIEWER])
    team = make_team("payments", maintainers=[alice])
    agent = services.agent_create(actor=None, data={"name": "billing-bot", "owner": "payments"}, check_permission=False)
    tool = services.tool_create(
        actor=None,
        data={
            "name": "github",
            "owner": "payments",
            "registry_name": "io.github.example/github",
            "endpoint_url": "https://mcp.github.example/mcp",
            "capabilities": [{"name": "create_issue"}, {"name": "delete_repo"}],
        },
        check_permission=False,
    )
    grant, _ = services.grant_request(actor=None, agent=agent, tool=tool, capability_names=["create_issue"])
    ToolGrant.objects.filter(pk=grant.pk).update(status=ToolGrant.Status.APPROVED)
    grant.refresh_from_db()
    return {"alice": alice, "sec": sec, "team": team, "agent": agent, "tool": tool, "grant": grant}


@pytest.fixture
def telemetry_token(make_user: Callable[..., Any]) -> Callable[..., Any]:
    """(secret, token) of a telemetry token; `agent=` binds it."""
    from portal.tokens import token_issue

    def make(*, user: Any = None, scopes: tuple[str, ...] = ("telemetry",), agent: str = "") -> tuple[str, Any]:
        user = user or make_user("collector")
        issued = token_issue(issued_by=user, name="otel", scopes=list(scopes), expires_in_days=30, agent=agent)
        return issued.secret, issued.token

    return make


@pytest.fixture
def post_spans(client: Any) -> Callable[..., Any]:
    def post(body: bytes, secret: str | None, *, content_type: str = "application/json", **headers: str) -> Any:
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        if secret is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return client.generic("POST", "/v1/traces", body, content_type=content_type, **extra)

    return post
