from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from approvals import decisions, services, submitting
from approvals.models import ApprovalRequest
from catalog import services as catalog
from portal.roles import BUSINESS_OWNER, DATA_OWNER, PLATFORM_ADMIN, SECURITY_LEAD, SECURITY_REVIEWER

READ_ONLY = [
    {"name": "list_items", "read_only": True, "open_world": False},
    {"name": "get_item", "read_only": True, "open_world": False},
]
TIER_FACTS: dict[str, dict[str, Any]] = {
    # Attested read-only capabilities: W=0, H=0, A counts 3 for the tool baseline.
    "low": {"data_class": "public", "reach": "closed", "credential_scope": "none"},
    "medium": {"data_class": "internal", "reach": "allowlisted", "credential_scope": "none"},
    "high": {"data_class": "restricted", "reach": "open_world", "credential_scope": "delegated"},
}


@pytest.fixture
def world(make_user: Callable[..., Any], make_team: Callable[..., Any]) -> dict[str, Any]:
    owner = make_user("olive")
    member = make_user("max")
    reviewer = make_user("rita", roles=[SECURITY_REVIEWER])
    reviewer2 = make_user("ravi", roles=[SECURITY_REVIEWER])
    lead = make_user("lena", roles=[SECURITY_REVIEWER, SECURITY_LEAD])
    data_owner = make_user("dana", roles=[DATA_OWNER])
    business = make_user("bruno", roles=[BUSINESS_OWNER])
    admin = make_user("ada", roles=[PLATFORM_ADMIN])
    team = make_team("payments", maintainers=[owner], members=[member])
    return {
        "owner": owner, "member": member, "reviewer": reviewer, "reviewer2": reviewer2, "lead": lead,
        "data_owner": data_owner, "business": business, "admin": admin, "team": team,
    }  # fmt: skip


@pytest.fixture
def make_tool(world: dict[str, Any]) -> Callable[..., Any]:
    def make(name: str = "inventory-api", tier: str = "medium", **extra: Any) -> Any:
        data: dict[str, Any] = {
            "name": name,
            "owner": "payments",
            "kind": "http_api" if "endpoint_url" in extra else "cli",
            "version": "1.2.3",
            "description": "Reads the inventory.",
            "capabilities": READ_ONLY,
        }
        if tier == "critical":
            data |= {"data_class": "restricted", "reach": "open_world", "credential_scope": "admin",
                     "capabilities": [{"name": "delete_everything", "destructive": True}]}  # fmt: skip
        else:
            data |= TIER_FACTS[tier]
        data |= extra
        tool = catalog.tool_create(actor=world["owner"], data=data)
        if tier != "critical":
            tool = catalog.tool_attest_annotations(tool=tool)
        assert tool.risk_tier == tier, tool.risk["explanation"]
        return tool

    return make


def submitted(capture: Any, actor: Any, *, attested_by: Any = None, **kwargs: Any) -> ApprovalRequest:
    """Submitted and its checks run; `attested_by` (never the requester) attests it when it waits for that."""
    with capture(execute=True):
        request = submitting.request_submit(actor=actor, **kwargs)
    request.refresh_from_db()
    if attested_by is not None and request.current_role == services.OWNER_ATTESTATION_ROLE:
        with capture(execute=True):
            decisions.request_attest(actor=attested_by, request_id=request.pk)
        request.refresh_from_db()
    return request
