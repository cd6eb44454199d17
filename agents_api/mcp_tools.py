"""The portal's MCP tools as plain functions: an authenticated caller and JSON arguments in, a JSON object out.

Each tool calls the same selectors and services as the REST API (and renders with its serializers), so an agent sees
what a person sees; no rule lives here. `tool_call` is the one door: it validates the arguments against the tool's
JSON Schema, refuses a token without the tool's scope, runs the tool as the token's identity and audits the call.
A refusal (bad arguments, unknown entity, missing scope, a rule of the workflow) is a result with an error message
for the agent to read, never a transport failure.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
from django.core.serializers.json import DjangoJSONEncoder

from agents_api import selectors
from approvals import selectors as approval_selectors
from approvals import services as approval_services
from approvals import submitting
from approvals.api.serializers import ApprovalRequestSerializer
from approvals.models import ApprovalRequest
from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from catalog.api.serializers import AgentDetailSerializer, ToolDetailSerializer
from catalog.models import Agent, Tool, ToolGrant
from portal.audit import audit_record
from portal.context import acting_as
from portal.models import ApiToken
from portal.tokens import token_actor, token_has_scope
from portal.types import User
from scaffolder import selectors as scaffolder_selectors
from scaffolder import services as scaffolder_services
from scaffolder.models import GoldenPathTemplate

MAX_RESULTS = 50
ENTITY_KINDS = ("agent", "tool")


class ToolRefusal(Exception):
    """The call cannot be answered; the message says why (and `fields` which arguments were wrong)."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


@dataclass(frozen=True)
class Caller:
    user: User
    token: ApiToken


@dataclass(frozen=True)
class PortalTool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    scope: str  # the token scope a call needs: "read" for queries, "write" for requests
    run: Callable[[Caller, dict[str, Any]], dict[str, Any]]

    @property
    def read_only(self) -> bool:
        return self.scope == ApiToken.Scope.READ


@dataclass(frozen=True)
class ToolOutcome:
    result: dict[str, Any]
    is_error: bool = False


def _json(value: Any) -> Any:
    """Plain JSON types (datetimes as ISO strings), as the API renders them."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _name(arguments: dict[str, Any], key: str) -> str:
    return str(arguments[key]).strip().lower()


# --- the tools -------------------------------------------------------------------------------------------------


def search_catalog(caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"q": arguments["query"], "page_size": arguments.get("limit", 10)}
    if arguments.get("kind"):
        params["kind"] = [arguments["kind"]]
    query = catalog_selectors.CatalogQuery.from_params(params)
    page = catalog_selectors.catalog_search(user=caller.user, query=query, with_facets=False)
    return {
        "query": query.q,
        "total": page.total,
        "corrections": page.corrections,
        "results": [
            {
                "kind": entry.kind,
                "name": entry.name,
                "title": entry.title,
                "summary": entry.summary,
                "owner": entry.owner.name,
                "risk_tier": entry.risk_tier,
                "risk_explanation": entry.risk_explanation,
                "lifecycle": entry.lifecycle,
                "status": entry.status,
            }
            for entry in page.entries
        ],
    }


def _entity(name: str, kind: str | None, *, argument: str = "name") -> Agent | Tool:
    for candidate in (kind,) if kind else ENTITY_KINDS:
        try:
            if candidate == "agent":
                return catalog_selectors.agent_detail(name=name)
            return catalog_selectors.tool_detail(name=name)
        except (Agent.DoesNotExist, Tool.DoesNotExist):
            continue
    what = kind or "agent or tool"
    message = f"The catalog has no {what} called {name!r}; search_catalog finds names."
    raise ToolRefusal(message, {argument: [f"no {what} {name!r}"]})


def describe(entity: Agent | Tool) -> dict[str, Any]:
    if isinstance(entity, Agent):
        return {"entity": "agent", **AgentDetailSerializer(entity).data}
    return {"entity": "tool", **ToolDetailSerializer(entity).data}


def _agent(name: str) -> Agent:
    agent = _entity(name, "agent", argument="agent")
    assert isinstance(agent, Agent)
    return agent


def _tool(name: str) -> Tool:
    tool = _entity(name, "tool", argument="tool")
    assert isinstance(tool, Tool)
    return tool


def describe_entity(caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
    return describe(_entity(_name(arguments, "name"), arguments.get("kind")))


def _grant_row(grant: ToolGrant) -> dict[str, Any]:
    return {
        "grant": grant.pk,
        "tool": grant.tool.name,
        "environment": grant.environment,
        "capabilities": list(grant.capability_names),
        "status": grant.status,
        "expires_at": grant.expires_at,
        "risk_tier": grant.risk_tier,
    }


def agent_tools(caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
    agent = _agent(_name(arguments, "agent"))
    active = selectors.active_grants().filter(agent=agent)
    pending = selectors.requested_grants().filter(agent=agent)
    return {
        "agent": agent.name,
        "tools": [_grant_row(grant) for grant in active],
        "pending": [_grant_row(grant) for grant in pending],
        "note": "Grants cover only the capabilities listed; POST /api/v1/grants/check/ answers at call time.",
    }


def request_status_of(approval: ApprovalRequest) -> dict[str, Any]:
    checks = approval_selectors.current_checks(approval)
    return {
        **ApprovalRequestSerializer(approval).data,
        "checks": [{"name": check.name, "status": check.status, "summary": check.summary} for check in checks],
    }


def _approval(request_id: int) -> ApprovalRequest:
    try:
        return approval_selectors.request_detail(request_id=request_id)
    except ApprovalRequest.DoesNotExist:
        raise ToolRefusal(f"There is no approval request #{request_id}.", {"request_id": ["unknown"]}) from None


def request_access(caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
    agent, tool = _agent(_name(arguments, "agent")), _tool(_name(arguments, "tool"))
    try:
        approval = submitting.grant_request_submit(
            actor=caller.user,
            agent=agent,
            tool=tool,
            environment=str(arguments.get("environment", "production")).strip().lower(),
            capability_names=list(arguments.get("capabilities", [])),
            justification=arguments["justification"],
        )
    except (catalog_services.CatalogError, approval_services.ApprovalError) as exc:
        raise ToolRefusal(f"The request was refused: {exc}", _renamed(exc.errors)) from exc
    except (
        catalog_services.CatalogPermissionError,
        approval_services.ApprovalPermissionError,
        approval_services.ApprovalConflict,
    ) as exc:
        raise ToolRefusal(str(exc)) from exc
    return request_status_of(_approval(approval.pk))


def _renamed(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    # The services name the grant's field; the tool's argument is `capabilities`.
    return {("capabilities" if key == "capability_names" else key): value for key, value in errors.items()}


def request_status(caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
    return request_status_of(_approval(int(arguments["request_id"])))


def _file_entry(path: str, content: bytes) -> dict[str, Any]:
    try:
        return {"path": path, "size": len(content), "encoding": "utf-8", "content": content.decode("utf-8")}
    except UnicodeDecodeError:
        return {"path": path, "size": len(content), "encoding": "base64", "content": base64.b64encode(content).decode()}


def golden_path_preview(caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
    name = str(arguments["template"]).strip()
    try:
        template = scaffolder_selectors.template_detail(name=name)
    except GoldenPathTemplate.DoesNotExist:
        raise ToolRefusal(f"There is no golden path {name!r}.", {"template": ["unknown"]}) from None
    if template.latest is None:
        raise ToolRefusal(f"The golden path {name!r} has no version yet.", {"template": ["no version"]})
    try:
        files = scaffolder_services.preview_render(version=template.latest, values=arguments.get("values", {}))
    except scaffolder_services.ScaffoldError as exc:
        fields = {f"values.{key}": value for key, value in exc.errors.items()}
        raise ToolRefusal(f"The values were refused: {exc}", fields) from exc
    return {
        "template": template.name,
        "version": template.latest.version,
        "written": False,
        "files": [_file_entry(path, content) for path, content in files.items()],
    }


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


NAME = {"type": "string", "minLength": 1, "maxLength": 200}
TOOLS: dict[str, PortalTool] = {
    tool.name: tool
    for tool in (
        PortalTool(
            name="search_catalog",
            title="Search the catalog",
            description="Search agents and tools by words (typos tolerated, as on the portal's catalog page). "
            "Each result has its kind, name, owner and risk tier.",
            input_schema=_schema(
                {
                    "query": {"type": "string", "maxLength": 200, "description": "Words to look for."},
                    "kind": {"type": "string", "enum": list(ENTITY_KINDS), "description": "Only agents or tools."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": 10},
                },
                ["query"],
            ),
            scope=ApiToken.Scope.READ,
            run=search_catalog,
        ),
        PortalTool(
            name="describe_entity",
            title="Describe an agent or tool",
            description="An agent's or tool's facts: owner, risk tier with the reasons for it, capabilities "
            "(tools) and grants.",
            input_schema=_schema(
                {
                    "name": {**NAME, "description": "Catalog name."},
                    "kind": {"type": "string", "enum": list(ENTITY_KINDS), "description": "agent or tool."},
                },
                ["name"],
            ),
            scope=ApiToken.Scope.READ,
            run=describe_entity,
        ),
        PortalTool(
            name="agent_tools",
            title="Which tools may an agent use",
            description="The agent's active grants (tool, environment, capabilities, expiry) and the ones still "
            "waiting for approval.",
            input_schema=_schema({"agent": {**NAME, "description": "The agent's catalog name."}}, ["agent"]),
            scope=ApiToken.Scope.READ,
            run=agent_tools,
        ),
        PortalTool(
            name="request_access",
            title="Request access to a tool",
            description="File a grant request for an agent and submit it for approval. This asks; it never "
            "approves. Needs a token with the write scope held by a maintainer of the agent's team.",
            input_schema=_schema(
                {
                    "agent": {**NAME, "description": "The agent that needs the tool."},
                    "tool": {**NAME, "description": "The tool's catalog name."},
                    "capabilities": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                        "description": "The tool's capabilities the agent needs; a grant covers only these.",
                    },
                    "environment": {"type": "string", "minLength": 1, "maxLength": 63, "default": "production"},
                    "justification": {"type": "string", "minLength": 1, "description": "Why the agent needs it."},
                },
                ["agent", "tool", "justification"],
            ),
            scope=ApiToken.Scope.WRITE,
            run=request_access,
        ),
        PortalTool(
            name="request_status",
            title="Status of an approval request",
            description="Where an approval request stands: state, current stage, due date and its checks.",
            input_schema=_schema({"request_id": {"type": "integer", "minimum": 1}}, ["request_id"]),
            scope=ApiToken.Scope.READ,
            run=request_status,
        ),
        PortalTool(
            name="golden_path_preview",
            title="Preview a golden path",
            description="Render a golden-path template with the given values and return the files it would "
            "write. A dry run: nothing is written, no run is recorded.",
            input_schema=_schema(
                {
                    "template": {**NAME, "description": "The golden path's name."},
                    "values": {"type": "object", "description": "Answers to the template's parameters."},
                },
                ["template"],
            ),
            scope=ApiToken.Scope.READ,
            run=golden_path_preview,
        ),
    )
}


def _argument_errors(schema: dict[str, Any], arguments: dict[str, Any]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in jsonschema.Draft202012Validator(schema).iter_errors(arguments):
        if error.validator == "required":
            missing = str(error.message).split("'")[1]
            fields.setdefault(missing, []).append("is required.")
        elif error.validator == "additionalProperties":
            fields.setdefault("arguments", []).append(error.message)
        else:
            field = ".".join(str(part) for part in error.absolute_path) or "arguments"
            fields.setdefault(field, []).append(error.message)
    return fields


def tool_call(*, caller: Caller, name: str, arguments: dict[str, Any]) -> ToolOutcome:
    """Run one tool as the caller's token, audited; a refusal comes back as an error outcome."""
    tool = TOOLS[name]
    with acting_as(token_actor(caller.token)):
        try:
            if not token_has_scope(caller.token, tool.scope):
                raise ToolRefusal(
                    f"This token lacks the '{tool.scope}' scope {name} needs (it has: {', '.join(caller.token.scopes)})."
                )
            fields = _argument_errors(tool.input_schema, arguments)
            if fields:
                names = ", ".join(sorted(fields))
                raise ToolRefusal(f"Invalid arguments: {names}.", fields)
            result = _json(tool.run(caller, arguments))
        except ToolRefusal as refusal:
            error = {"error": {"message": refusal.message, "fields": refusal.fields}}
            _audit(name, arguments, outcome="refused", message=refusal.message)
            return ToolOutcome(error, is_error=True)
        _audit(name, arguments, outcome="ok")
        return ToolOutcome(result)


def _audit(name: str, arguments: dict[str, Any], *, outcome: str, message: str = "") -> None:
    changes: dict[str, Any] = {"tool": name, "arguments": arguments, "outcome": outcome}
    if message:
        changes["message"] = message
    audit_record(action="mcp.tool.called", object_type="mcp.tool", object_id=name, object_repr=name, changes=changes)
