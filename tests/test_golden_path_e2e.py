"""A golden-path MCP server and agent, all the way through, with real processes on loopback only.

Scaffold mcp-server, start the generated server from its own venv, register it (a real worker runs the run and the
onboarding checks, which introspect the live server), a reviewer approves it, it appears in /v0.1/servers; scaffold
python-agent requesting it, approve its onboarding and grant; the generated agent (a scripted pydantic-ai model)
reaches the tool over MCP, asking the portal's grant check first, and its OpenTelemetry spans show the call on the
agent's page; after the grant is revoked it refuses the call, and the denied check is a finding its owners are told
of within seconds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from approvals import decisions
from approvals import services as approvals
from approvals.models import ApprovalRequest, CheckRun, Notification
from catalog import services as catalog
from catalog.models import Tool, ToolGrant
from catalog.teams import team_create, team_set_member
from portal.roles import BUSINESS_OWNER, DATA_OWNER, SECURITY_LEAD, SECURITY_REVIEWER
from portal.tokens import token_issue
from runtime.models import Finding, ToolUsageDaily
from scaffolder import registering, services
from scaffolder.models import GoldenPathTemplate, ScaffoldRun
from scaffolder.rendering import write_rendered

pytestmark = [pytest.mark.worker, pytest.mark.golden_venv, pytest.mark.django_db(transaction=True)]

SERVER_NAME = "items-mcp"
AGENT_NAME = "items-assistant"
GRANT_CHECK = "/api/v1/grants/check/"
# The generated agent, run once from its own venv with a scripted model that calls one MCP tool.
AGENT_SCRIPT = """
import asyncio, json
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel
from items_assistant.agent import run
from items_assistant.descriptor import load_descriptor
from items_assistant.telemetry import configure_tracing

provider = configure_tracing(load_descriptor().name)  # as `python -m items_assistant` does

def script(messages, info):
    last = messages[-1].parts[-1]
    if isinstance(last, ToolReturnPart):
        return ModelResponse(parts=[TextPart("get_item said: " + json.dumps(last.content))])
    return ModelResponse(parts=[ToolCallPart("get_item", {"item_id": "item-1"})])

result = asyncio.run(run("what is item-1?", model=FunctionModel(script)))
if provider is not None:
    provider.shutdown()  # flush the spans
print(json.dumps({"output": result.output, "calls": [call.__dict__ for call in result.calls]}))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{log()}")


def _venv(project: Path, folder: Path) -> Path:
    """A fresh venv with only the project's declared dependencies, from the package index."""
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(python), *metadata["dependencies"]],
        check=True,
        timeout=600,
    )
    return python


def _clean_env(project: Path, **extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "UV_CACHE_DIR")
    return {**{key: os.environ[key] for key in keep if key in os.environ}, "PYTHONPATH": str(project), **extra}


@pytest.fixture
def people(make_user: Callable[..., Any]) -> dict[str, Any]:
    owner = make_user("olive")
    team = team_create(name="platform")
    team_set_member(team=team, user=owner, role="maintainer")
    reviewers = [
        make_user("sam", roles=[SECURITY_REVIEWER]),
        make_user("sarah", roles=[SECURITY_REVIEWER, SECURITY_LEAD]),
        make_user("dora", roles=[DATA_OWNER]),
        make_user("olga", roles=[BUSINESS_OWNER]),
    ]
    return {"owner": owner, "reviewers": [owner, *reviewers]}


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Before the worker starts, so its processes may reach the generated server on loopback."""
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    monkeypatch.setenv("SSRF_ALLOWLIST", "127.0.0.1")


@pytest.fixture
def mcp_server_process(tmp_path: Path) -> Iterator[Callable[[Path, int], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(project: Path, port: int) -> subprocess.Popen[bytes]:
        python = _venv(project, tmp_path / "server-venv")
        env = _clean_env(project, MCP_TRANSPORT="streamable_http", MCP_HOST="127.0.0.1", MCP_PORT=str(port))
        log = (tmp_path / "server.log").open("wb")
        process = subprocess.Popen([str(python), "-m", "items_mcp"], cwd=project, env=env, stdout=log, stderr=log)
        started.append(process)

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        _wait_for(listening, 60, "the generated MCP server to listen", lambda: (tmp_path / "server.log").read_text())
        return process

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def _scaffold(owner: Any, template: str, values: dict[str, Any]) -> ScaffoldRun:
    with transaction.atomic():
        run = services.run_start(actor=owner, template=GoldenPathTemplate.objects.get(name=template), values=values)
    _wait_for(
        lambda: ScaffoldRun.objects.get(pk=run.pk).state in (ScaffoldRun.State.SUCCEEDED, ScaffoldRun.State.FAILED),
        120,
        f"the {template} run on the worker",
    )
    run.refresh_from_db()
    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    return run


def _approve(request_id: int, reviewers: list[Any], log: Callable[[], str]) -> ApprovalRequest:
    """Wait for the checks, then let each stage be decided by the first person its policy accepts."""
    settled = (ApprovalRequest.State.IN_REVIEW, ApprovalRequest.State.APPROVED, ApprovalRequest.State.CHANGES_REQUESTED)
    _wait_for(lambda: ApprovalRequest.objects.get(pk=request_id).state in settled, 120, f"checks of #{request_id}", log)
    request = ApprovalRequest.objects.get(pk=request_id)
    deadline = time.monotonic() + 60
    while request.state == ApprovalRequest.State.IN_REVIEW:
        busy = False
        for reviewer in reviewers:
            try:
                decisions.request_decide(actor=reviewer, request_id=request_id, outcome="approve", comment="e2e")
                break
            except approvals.ApprovalConflict:
                # 409, as a reviewer would see it: the worker holds the subject's row (the agent's other request is
                # still being checked) or the stage moved on. A person reloads and tries again; so does this.
                busy = True
            except (approvals.ApprovalPermissionError, approvals.ApprovalError):
                continue
        else:
            if not busy or time.monotonic() > deadline:
                pytest.fail(f"nobody could decide request #{request_id}'s stage {request.stage}")
            time.sleep(0.5)
        request.refresh_from_db()
    failed = list(CheckRun.objects.filter(request=request, status__in=["failed", "error"]).values("name", "summary"))
    assert request.state == ApprovalRequest.State.APPROVED, failed
    return request


def test_a_scaffolded_agent_reaches_its_scaffolded_mcp_server_until_the_grant_is_revoked(
    people: dict[str, Any],
    loopback_allowed: None,
    celery_worker_process: Any,
    mcp_server_process: Callable[[Path, int], subprocess.Popen[bytes]],
    live_server: Any,
    tmp_path: Path,
) -> None:
    owner, reviewers = people["owner"], people["reviewers"]
    registering.templates_register_builtin()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}/mcp"
    server_values = {
        "name": SERVER_NAME,
        "description": "Look up work items.",
        "owner": "platform",
        "endpoint_url": endpoint,
    }

    # The generated server, from its own venv, listening before the run registers it (the checks introspect it).
    server_project = tmp_path / SERVER_NAME
    version = GoldenPathTemplate.objects.get(name="mcp-server").latest
    write_rendered(services.preview_render(version=version, values=server_values), server_project)
    mcp_server_process(server_project, port)

    server_run = _scaffold(owner, "mcp-server", server_values)
    onboarding = _approve(server_run.approval_request_ids[0], reviewers, celery_worker_process.log)
    served = CheckRun.objects.get(request=onboarding, round=onboarding.round, name="mcp_tools")
    assert served.status == "passed", served.summary
    assert {tool["name"] for tool in served.output["tools"]} == {"get_item", "list_items"}
    tool = Tool.objects.get(name=SERVER_NAME)
    assert tool.status == Tool.Status.APPROVED
    registry = Client().get("/v0.1/servers").json()["servers"]
    assert [entry["server"]["remotes"] for entry in registry] == [[{"type": "streamable-http", "url": endpoint}]]

    agent_values = {
        "name": AGENT_NAME,
        "description": "Answers questions about work items.",
        "owner": "platform",
        "agent_type": "business",
        "data_class": "internal",
        "human_approval": False,
        "tools": [SERVER_NAME],
    }
    agent_run = _scaffold(owner, "python-agent", agent_values)
    for request_id in agent_run.approval_request_ids:
        _approve(request_id, reviewers, celery_worker_process.log)
    grant = ToolGrant.objects.get(agent__name=AGENT_NAME, tool__name=SERVER_NAME, environment="production")
    assert grant.status == ToolGrant.Status.APPROVED
    assert sorted(grant.capability_names) == ["get_item", "list_items"]

    agent_project = tmp_path / AGENT_NAME
    services.run_materialise(run=agent_run, folder=agent_project)
    python = _venv(agent_project, tmp_path / "agent-venv")
    token = token_issue(issued_by=owner, name="agent", scopes=["read"], expires_in_days=1)
    # The agent's own telemetry token (bound to it), as its owners issue one from the tokens page.
    telemetry = token_issue(issued_by=owner, name="spans", scopes=["telemetry"], expires_in_days=1, agent=AGENT_NAME)
    env = _clean_env(
        agent_project,
        PORTAL_URL=live_server.url,
        PORTAL_TOKEN=token.secret,
        AGENT_ENVIRONMENT="production",
        GRANT_CHECK_CACHE_SECONDS="0",
        OTEL_EXPORTER_OTLP_ENDPOINT=live_server.url,
        OTEL_EXPORTER_OTLP_HEADERS=f"Authorization=Bearer%20{telemetry.secret}",
    )

    def run_agent() -> dict[str, Any]:
        done = subprocess.run(
            [str(python), "-c", AGENT_SCRIPT], cwd=agent_project, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    allowed = run_agent()
    assert [(call["capability"], call["allowed"]) for call in allowed["calls"]] == [("get_item", True)]
    assert "item-1" in allowed["output"]
    # Its spans (sent as it exits) are counted against the grant: the call shows on the agent's page.
    usage = _eventually(
        lambda: ToolUsageDaily.objects.filter(agent_key=AGENT_NAME, tool_key=SERVER_NAME, capability="get_item").first()
    )
    assert (usage.calls, usage.denied) == (1, 0)
    page = Client()
    page.force_login(owner)
    panel = page.get(f"/catalog/agents/{AGENT_NAME}/").content.decode()
    assert 'data-testid="usage-totals">1 tool calls' in panel and "get_item (1)" in panel
    assert not Finding.objects.exists()

    catalog.grant_set_status(grant=grant, status=ToolGrant.Status.REVOKED, reason="e2e: revoked")
    refused = run_agent()
    assert [(call["capability"], call["allowed"]) for call in refused["calls"]] == [("get_item", False)]
    assert "item-1" not in refused["output"].replace("what is item-1", "")
    # The refused check is a finding at once, and the owning team's maintainers hear of it from the worker.
    finding = Finding.objects.get(agent_key=AGENT_NAME, tool_key=SERVER_NAME)
    assert (finding.kind, finding.state) == ("grant_revoked", "open")
    told = _eventually(lambda: Notification.objects.filter(event="finding", recipient=owner).first())
    assert AGENT_NAME in told.subject


def _eventually(find: Callable[[], Any], seconds: float = 15.0) -> Any:
    """What `find` returns once it returns something, within `seconds` (spans and notifications come from other
    processes)."""
    deadline = time.monotonic() + seconds
    while (found := find()) is None:
        assert time.monotonic() < deadline, "not there in time"
        time.sleep(0.2)
    return found
