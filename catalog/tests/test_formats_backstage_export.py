"""export_backstage: valid for a stock Backstage catalog, and parse(export(x)) == x.

The stand-in for a real catalog backend is (1) the Backstage JSON schemas vendored under
samples/backstage_schemas and (2) the field-format rules Backstage enforces in code,
re-implemented below from KubernetesValidatorFunctions / CommonValidatorFunctions /
FieldFormatEntityPolicy / ReservedFieldsEntityPolicy (independently of catalog.formats).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from catalog.formats import ExportError, export_backstage, load_yaml_documents, parse_backstage_yaml

SCHEMAS = Path(__file__).parent / "samples" / "backstage_schemas"
SHARED_SCHEMAS = ("Entity", "EntityMeta", "common")
SCHEMAS_BY_KIND = {
    "Component": ["Component.v1alpha1"],
    # An MCP server must satisfy the generic API schema (older releases) and the mcp-server one.
    "API": ["API.v1alpha1"],
    "Group": ["Group.v1alpha1"],
    "User": ["User.v1alpha1"],
    "Resource": ["Resource.v1alpha1"],
}

# --------------------------------------------------------------------------- the stand-in backend

OBJECT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_LABEL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
RESERVED = {"apiVersion", "kind", "uid", "etag", "generation", "name", "namespace", "labels", "annotations", "spec"}


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


REGISTRY = Registry().with_resources(
    (_schema(name)["$id"], Resource.from_contents(_schema(name), default_specification=DRAFT7))
    for name in SHARED_SCHEMAS
)


def _is_object_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and OBJECT_NAME.match(value) is not None


def _is_dns_label(value: str) -> bool:
    return 1 <= len(value) <= 63 and DNS_LABEL.match(value) is not None


def _is_prefixed(value: str, *, suffix_ok: Any) -> bool:
    parts = value.split("/")
    if len(parts) == 1:
        return suffix_ok(parts[0])
    if len(parts) != 2:
        return False
    prefix_ok = 1 <= len(parts[0]) <= 253 and all(_is_dns_label(p) for p in parts[0].split("."))
    return prefix_ok and suffix_ok(parts[1])


def _field_format_problems(entity: dict[str, Any]) -> list[str]:
    """FieldFormatEntityPolicy + ReservedFieldsEntityPolicy with Backstage's default validators."""
    problems = []
    metadata = entity["metadata"]
    api_version_ok = _is_prefixed(
        entity["apiVersion"], suffix_ok=lambda n: 1 <= len(n) <= 63 and re.match(r"^[a-z0-9A-Z]+$", n)
    )
    if not api_version_ok:
        problems.append("apiVersion")
    if not re.match(r"^[a-zA-Z][a-z0-9A-Z]*$", entity["kind"]):
        problems.append("kind")
    if not _is_object_name(metadata["name"]):
        problems.append(f"metadata.name {metadata['name']!r}")
    if "namespace" in metadata and not _is_dns_label(metadata["namespace"]):
        problems.append("metadata.namespace")
    for key, value in metadata.get("labels", {}).items():
        if not _is_prefixed(key, suffix_ok=_is_object_name) or not (value == "" or _is_object_name(value)):
            problems.append(f"labels.{key}")
    for key, value in metadata.get("annotations", {}).items():
        if not _is_prefixed(key, suffix_ok=_is_object_name) or not isinstance(value, str):
            problems.append(f"annotations.{key}")
    problems += [f"tags.{i}" for i, tag in enumerate(metadata.get("tags", [])) if not _is_dns_label(tag)]
    for i, link in enumerate(metadata.get("links", [])):
        parts = urlsplit(link.get("url", ""))
        if not parts.scheme or (parts.scheme.startswith("http") and not parts.netloc):
            problems.append(f"links.{i}.url")
        if "title" in link and not link["title"].strip():
            problems.append(f"links.{i}.title")
    for field in RESERVED:
        for where in ("spec", "labels", "annotations"):
            container = entity.get("spec", {}) if where == "spec" else metadata.get(where, {})
            if field in container:
                problems.append(f"reserved {where}.{field}")
    return problems


def _reference_problems(entity: dict[str, Any]) -> list[str]:
    """Every entity reference must name a valid entity (relation processing rejects others)."""
    spec = entity.get("spec", {})
    problems = []
    for field in ("owner", "parent", "consumesApis", "dependsOn", "children", "members", "memberOf"):
        refs = spec.get(field)
        for ref in [refs] if isinstance(refs, str) else refs or []:
            kind, _, rest = ref.rpartition(":")
            name = rest.rpartition("/")[2]
            if not _is_object_name(name) or (kind and not re.match(r"^[a-zA-Z]+$", kind)):
                problems.append(f"spec.{field}: {ref!r}")
    return problems


def backstage_would_reject(yaml_text: str) -> list[str]:
    """Everything the stand-in backend rejects in a catalog file (empty list: ingests cleanly)."""
    problems = []
    for document in load_yaml_documents(yaml_text):
        if document.error:
            problems.append(f"document {document.index}: {document.error}")
            continue
        entity = document.data
        if json.loads(json.dumps(entity)) != entity:
            problems.append(f"document {document.index}: not JSON safe")
        names = list(SCHEMAS_BY_KIND[entity["kind"]])
        if entity["kind"] == "API" and entity["spec"]["type"] == "mcp-server":
            names.append("API.v1alpha1.mcp-server")
        for name in names:
            validator = Draft7Validator(_schema(name), registry=REGISTRY)
            problems += [f"document {document.index} {name}: {e.message}" for e in validator.iter_errors(entity)]
        problems += [f"document {document.index}: {p}" for p in _field_format_problems(entity)]
        problems += [f"document {document.index}: {p}" for p in _reference_problems(entity)]
    return problems


def test_it_has_a_stand_in_backend_that_rejects_what_backstage_rejects() -> None:
    bad = """\
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: Bad Name
  labels: {agentportal.io/reach: "open world"}
  annotations: {name: reserved}
  tags: [Not_A_Tag]
spec: {type: mcp-server, lifecycle: production, owner: "group:also bad"}
"""

    problems = " | ".join(backstage_would_reject(bad))

    for expected in (
        "'definition' is a required property",
        "'remotes' is a required property",
        "metadata.name",
        "labels.agentportal.io/reach",
        "reserved annotations.name",
        "tags.0",
        "spec.owner",
    ):
        assert expected in problems


# --------------------------------------------------------------------------- fixtures


def rich_catalog() -> list[dict[str, Any]]:
    """Every data key of every kind populated, including awkward values."""
    return [
        {
            "kind": "team",
            "data": {
                "name": "engineering",
                "title": "Engineering",
                "description": "All of engineering.",
                "email": "eng@acme.example",
                "members": ["cto"],
            },
        },
        {
            "kind": "team",
            "data": {
                "name": "platform-ai",
                "title": "Platform AI",
                "description": "Runs the AI platform. <script>alert(1)</script>",
                "email": "platform-ai@acme.example",
                "parent": "engineering",
                "members": ["jdoe", "a.smith"],
            },
        },
        {
            "kind": "user",
            "data": {
                "username": "jdoe",
                "email": "jenny.doe@acme.example",
                "display_name": "Jenny Doe",
                "teams": ["platform-ai"],
            },
        },
        {
            "kind": "user",
            "data": {"username": "a.smith", "email": "a@acme.example", "display_name": "A. Smith", "teams": []},
        },
        {
            "kind": "model",
            "data": {
                "name": "claude-sonnet-4.5",
                "title": "Claude Sonnet 4.5",
                "provider": "Anthropic",
                "model_id": "claude-sonnet-4-5-20250929",
                "hosting": "saas",
                "residency": "EU (Frankfurt)",
                "data_class": "confidential",
            },
        },
        {
            "kind": "tool",
            "data": {
                "name": "warehouse-query-acme-data-c55302",
                "registry_name": "io.github.acme-data/warehouse-query",
                "title": "Warehouse Query",
                "description": "Read-only SQL: 'yes', on, 2024-01-01, 0o17, 1e3, null",
                "owner": "platform-ai",
                "kind": "mcp_server",
                "version": "1.10",
                "lifecycle": "production",
                "endpoint_url": "https://mcp.acme-data.example/warehouse/mcp",
                "transport": "streamable_http",
                "auth_scheme": "bearer",
                "credential_scope": "delegated",
                "reach": "allowlisted",
                "data_class": "confidential",
                "capabilities": [
                    {
                        "name": "run_query",
                        "description": "Run a read-only SQL query",
                        "read_only": True,
                        "destructive": False,
                        "idempotent": True,
                        "open_world": False,
                    },
                    {
                        "name": "explain_plan",
                        "description": None,
                        "read_only": None,
                        "destructive": None,
                        "idempotent": None,
                        "open_world": None,
                    },
                ],
                "secrets": ["WAREHOUSE_TOKEN", "Authorization"],
                "packages": [
                    {
                        "registry_type": "npm",
                        "identifier": "@acme-data/warehouse-query-mcp",
                        "version": "2.3.1",
                        "transport": "stdio",
                        "runtime_hint": "npx",
                    }
                ],
                "remotes": [
                    {
                        "type": "streamable-http",
                        "url": "https://mcp.acme-data.example/warehouse/mcp",
                        "headers": ["Authorization", "X-Tenant"],
                    },
                    {"type": "sse", "url": "https://mcp.acme-data.example/warehouse/sse", "headers": []},
                ],
                "repository_url": "https://github.com/acme-data/warehouse-query",
                "tags": ["sql", "Data Warehouse", "c++"],
                "links": [
                    {"url": "https://acme-data.github.io/warehouse-query", "title": "Website"},
                    {"url": "https://runbooks.acme.example/warehouse", "title": None},
                ],
                "annotations": {"backstage.io/techdocs-ref": "dir:.", "acme.example/cost-center": "4711"},
            },
        },
        {
            "kind": "tool",
            "data": {
                "name": "orders-api",
                "registry_name": "com.acme/orders-api",
                "title": "Orders API",
                "description": "Orders over REST.",
                "owner": "platform-ai",
                "kind": "http_api",
                "version": "3.0.0",
                "lifecycle": "deprecated",
                "endpoint_url": "https://orders.acme.example/v3",
                "transport": "http",
                "auth_scheme": "oauth2",
                "credential_scope": "shared",
                "reach": "closed",
                "data_class": "restricted",
                "capabilities": [
                    {
                        "name": "cancel_order",
                        "description": "Cancel an order, irreversibly",
                        "read_only": False,
                        "destructive": True,
                        "idempotent": False,
                        "open_world": False,
                    }
                ],
                "secrets": ["ORDERS_CLIENT_SECRET"],
                "packages": [],
                "remotes": [{"type": "http", "url": "https://orders.acme.example/v3", "headers": ["Authorization"]}],
                "repository_url": "https://gitlab.acme.example/orders/api",
                "definition": "openapi: 3.1.0\ninfo:\n  title: Orders\n  version: 3.0.0\npaths: {}\n",
                "tags": ["orders"],
                "links": [{"url": "https://orders.acme.example/docs", "title": "Docs"}],
                "annotations": {"acme.example/tier": "1"},
            },
        },
        {
            "kind": "tool",
            "data": {
                "name": "kubectl",
                "title": "kubectl",
                "description": "The Kubernetes CLI",
                "owner": "engineering",
                "kind": "cli",
                "version": "1.31.0",
                "lifecycle": "production",
                "transport": "stdio",
                "auth_scheme": "mtls",
                "credential_scope": "admin",
                "reach": "closed",
                "data_class": "internal",
                "secrets": ["KUBECONFIG"],
            },
        },
        {
            "kind": "agent",
            "data": {
                "name": "release-notes-agent",
                "title": "Release Notes Agent",
                "description": "Drafts release notes.\nSecond line with trailing spaces   \n",
                "owner": "platform-ai",
                "lifecycle": "experimental",
                "agent_type": "code_review",
                "autonomy_level": 4,
                "human_in_loop": "sampled",
                "data_class": "internal",
                "runtime": "kubernetes",
                "models": ["claude-sonnet-4.5", "gpt-4o-mini"],
                "calls": ["pricing-agent"],
                "tools": ["warehouse-query-acme-data-c55302", "orders-api", "kubectl"],
                "repository_url": "https://github.com/acme/release-notes-agent",
                "a2a_endpoint": "https://agents.acme.example/release-notes/a2a",
                "a2a_protocol_version": "1.0",
                "provider_org": "ACME Platform",
                "version": "0.9.0",
                "skills": [
                    {
                        "id": "draft-notes",
                        "name": "Draft release notes",
                        "description": 'Summarises merged PRs, "quoted" and, commas',
                        "tags": ["release", "writing"],
                    },
                    {"id": "post", "name": "Post notes", "description": None, "tags": []},
                ],
                "environments": ["staging", "prod, eu-west"],
                "tags": ["python", "release"],
                "links": [{"url": "https://grafana.acme.example/d/rn", "title": "Dashboard"}],
                "annotations": {"pagerduty.com/service-id": "PX1234", "backstage.io/techdocs-ref": "dir:."},
            },
        },
        {
            "kind": "agent",
            "data": {
                "name": "pricing-agent",
                "title": "Pricing Agent",
                "description": "Quotes prices.",
                "owner": "engineering",
                "lifecycle": "production",
                "agent_type": "business",
                "autonomy_level": 1,
                "human_in_loop": "per_action",
                "data_class": "public",
                "runtime": "serverless",
                "models": [],
                "calls": [],
                "tools": [],
                "repository_url": "https://github.com/acme/pricing-agent",
                "a2a_endpoint": "https://agents.acme.example/pricing/a2a",
                "a2a_protocol_version": "0.3.0",
                "provider_org": "ACME Sales Engineering",
                "version": "2.0.0",
                "skills": [],
                "environments": ["prod"],
                "tags": [],
                "links": [],
                "annotations": {"acme.example/team-channel": "#pricing"},
            },
        },
    ]


def sparse_catalog() -> list[dict[str, Any]]:
    """Only the names: every required Backstage field must be filled by placeholders."""
    return [
        {"kind": "team", "data": {"name": "lonely-team"}},
        {"kind": "user", "data": {"username": "nobody"}},
        {"kind": "model", "data": {"name": "some-model"}},
        {"kind": "tool", "data": {"name": "bare-tool"}},
        {"kind": "tool", "data": {"name": "bare-mcp", "kind": "mcp_server"}},
        {
            "kind": "tool",
            "data": {
                "name": "stdio-mcp",
                "kind": "mcp_server",
                "packages": [
                    {
                        "registry_type": "pypi",
                        "identifier": "weather-mcp",
                        "version": "0.5.0",
                        "transport": "stdio",
                        "runtime_hint": "uvx",
                    }
                ],
            },
        },
        {"kind": "agent", "data": {"name": "bare-agent"}},
    ]


def _round_trip(catalog: list[dict[str, Any]], **options: Any) -> tuple[str, list[dict[str, Any]]]:
    text = export_backstage(catalog, **options)
    result = parse_backstage_yaml(text, source="exported.yaml")
    assert result.errors == []
    assert result.skipped == []
    return text, [{"kind": entity.kind, "data": entity.data} for entity in result.entities]


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("catalog", [rich_catalog(), sparse_catalog()], ids=["rich", "sparse"])
def test_it_exports_what_a_stock_backstage_catalog_ingests_without_errors(catalog: list[dict[str, Any]]) -> None:
    text = export_backstage(catalog)

    assert backstage_would_reject(text) == []


@pytest.mark.parametrize("catalog", [rich_catalog(), sparse_catalog()], ids=["rich", "sparse"])
def test_it_round_trips_every_data_key(catalog: list[dict[str, Any]]) -> None:
    _, parsed = _round_trip(catalog)

    assert parsed == catalog


def test_it_populates_every_data_key_in_the_rich_round_trip() -> None:
    expected_keys = {
        "team": {"name", "title", "description", "email", "parent", "members"},
        "user": {"username", "email", "display_name", "teams"},
        "model": {"name", "provider", "model_id", "hosting", "residency", "data_class"},
        "agent": {
            "name",
            "title",
            "description",
            "owner",
            "lifecycle",
            "agent_type",
            "autonomy_level",
            "human_in_loop",
            "data_class",
            "runtime",
            "models",
            "calls",
            "tools",
            "repository_url",
            "a2a_endpoint",
            "a2a_protocol_version",
            "provider_org",
            "version",
            "skills",
            "environments",
            "tags",
            "links",
            "annotations",
        },
        "tool": {
            "name",
            "registry_name",
            "title",
            "description",
            "owner",
            "kind",
            "version",
            "lifecycle",
            "endpoint_url",
            "transport",
            "auth_scheme",
            "credential_scope",
            "reach",
            "data_class",
            "capabilities",
            "secrets",
            "packages",
            "remotes",
            "repository_url",
            "definition",
            "tags",
            "links",
            "annotations",
        },
    }
    covered: dict[str, set[str]] = {}
    for item in rich_catalog():
        covered.setdefault(item["kind"], set()).update(item["data"])

    for kind, keys in expected_keys.items():
        assert keys <= covered[kind], (kind, keys - covered[kind])


def test_it_round_trips_entities_that_came_from_parsing() -> None:
    sample = Path(__file__).parent / "samples" / "backstage" / "catalog-info.yaml"
    first = parse_backstage_yaml(sample.read_bytes(), source="catalog-info.yaml")

    text = export_backstage(first.entities)
    second = parse_backstage_yaml(text, source="exported.yaml")

    assert backstage_would_reject(text) == []
    assert [entity.data for entity in second.entities] == [entity.data for entity in first.entities]


def test_it_writes_agents_as_ai_agent_components_with_relations() -> None:
    text = export_backstage(rich_catalog())
    agent = next(d.data for d in load_yaml_documents(text) if d.data["metadata"]["name"] == "release-notes-agent")

    assert agent["kind"] == "Component"
    assert agent["spec"]["type"] == "ai-agent"
    assert agent["spec"]["owner"] == "group:platform-ai"
    assert agent["spec"]["consumesApis"] == ["api:warehouse-query-acme-data-c55302", "api:orders-api", "api:kubectl"]
    assert agent["spec"]["dependsOn"] == ["component:pricing-agent"]
    assert agent["metadata"]["labels"]["agentportal.io/autonomy-level"] == "4"
    assert agent["metadata"]["annotations"]["backstage.io/source-location"] == (
        "url:https://github.com/acme/release-notes-agent"
    )


def test_it_writes_mcp_servers_with_remotes_and_a_definition_holding_server_json_and_tools() -> None:
    text = export_backstage(rich_catalog())
    api = next(d.data for d in load_yaml_documents(text) if d.data["spec"].get("type") == "mcp-server")

    assert api["spec"]["remotes"] == [
        {"type": "streamable-http", "url": "https://mcp.acme-data.example/warehouse/mcp"},
        {"type": "sse", "url": "https://mcp.acme-data.example/warehouse/sse"},
    ]
    [definition] = [doc.data for doc in load_yaml_documents(api["spec"]["definition"])]
    assert definition["server"]["name"] == "io.github.acme-data/warehouse-query"
    assert definition["server"]["packages"][0]["transport"] == {"type": "stdio"}
    assert definition["server"]["remotes"][0]["headers"] == [
        {"name": "Authorization", "isSecret": True},
        {"name": "X-Tenant", "isSecret": False},
    ]
    assert definition["tools"][0] == {
        "name": "run_query",
        "description": "Run a read-only SQL query",
        "annotations": {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False},
    }
    assert definition["tools"][1] == {"name": "explain_plan"}


def test_it_gives_groups_type_and_children_from_the_other_teams() -> None:
    text = export_backstage(rich_catalog())
    groups = {
        d.data["metadata"]["name"]: d.data["spec"] for d in load_yaml_documents(text) if d.data["kind"] == "Group"
    }

    assert groups["engineering"]["type"] == "team"
    assert groups["engineering"]["children"] == ["group:platform-ai"]
    assert groups["platform-ai"]["children"] == []
    assert groups["platform-ai"]["parent"] == "group:engineering"


def test_it_marks_placeholders_so_they_never_come_back_as_data() -> None:
    text = export_backstage(sparse_catalog(), placeholder_owner="catalog-admins")
    documents = {d.data["metadata"]["name"]: d.data for d in load_yaml_documents(text)}

    agent = documents["bare-agent"]
    assert agent["spec"]["owner"] == "group:catalog-admins"
    assert agent["spec"]["lifecycle"] == "unknown"
    assert agent["metadata"]["annotations"]["agentportal.io/placeholders"] == "spec.lifecycle,spec.owner"
    assert documents["stdio-mcp"]["spec"]["remotes"] == [{"type": "stdio", "url": "uvx weather-mcp@0.5.0"}]


def test_it_quotes_strings_a_yaml_1_2_parser_would_read_as_other_types() -> None:
    text = export_backstage(rich_catalog())

    assert "'1.10'" in text or '"1.10"' in text
    for document in load_yaml_documents(text):
        for value in document.data["metadata"].get("annotations", {}).values():
            assert isinstance(value, str)


def test_it_writes_a_non_default_namespace() -> None:
    text = export_backstage([{"kind": "team", "data": {"name": "t"}}], namespace="ai-platform")

    [document] = load_yaml_documents(text)
    assert document.data["metadata"]["namespace"] == "ai-platform"
    assert backstage_would_reject(text) == []


def test_it_refuses_to_write_what_backstage_would_reject() -> None:
    catalog = copy.deepcopy(rich_catalog())
    catalog[2]["data"]["username"] = "jenny doe@acme"
    catalog[8]["data"]["autonomy_level"] = 9
    catalog[9]["data"]["annotations"]["agentportal.io/sneaky"] = "x"
    catalog[5]["data"]["links"].append({"url": "not a url"})
    catalog[6]["data"]["links"].append({"url": "http://[::1"})
    catalog[6]["data"]["owner"] = "team with spaces"
    catalog.append({"kind": "system", "data": {"name": "s"}})

    with pytest.raises(ExportError) as raised:
        export_backstage(catalog, namespace="Not_A_Namespace")

    problems = "\n".join(raised.value.problems)
    for expected in (
        "namespace 'Not_A_Namespace'",
        "'jenny doe@acme'",
        "autonomy_level must be a whole number from 1 to 5",
        "must not use the agentportal.io/ prefix",
        "'not a url' is not a URL",
        "'http://[::1' is not a URL",
        "spec.owner reference 'group:team with spaces'",
        "unknown kind",
    ):
        assert expected in problems


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("tool", {"name": "t", "kind": "mcp_server", "capabilities": "all"}, "capabilities must be a list"),
        ("tool", {"name": "t", "packages": [{"transport": "pigeon"}]}, "transport must be one of"),
        ("tool", {"name": "t", "remotes": [{"type": "", "url": "https://x"}]}, "with a type and a url"),
        ("tool", {"name": "t", "links": ["https://x"]}, "links must be a list of {url, title}"),
        ("agent", {"name": "a", "tools": "kubectl"}, "tools must be a list of strings"),
        ("agent", {"name": "a", "lifecycle": "beta"}, "lifecycle must be one of"),
        ("agent", {"name": "a", "annotations": {"x": 1}}, "annotations must map strings to strings"),
        ("team", {"name": "t", "parent": ["a"]}, "parent must be a string"),
        ("user", {"email": "no-username@acme"}, "needs a username"),
        ("agent", "not a mapping", "data must be a mapping"),
    ],
)
def test_it_reports_wrongly_typed_data_as_an_export_error(kind: str, data: Any, message: str) -> None:
    with pytest.raises(ExportError) as raised:
        export_backstage([{"kind": kind, "data": data}])

    assert message in raised.value.problems[0]


def test_it_treats_empty_strings_as_absent() -> None:
    catalog = [
        {"kind": "tool", "data": {"name": "t", "kind": "http_api", "definition": " ", "version": ""}},
        {"kind": "user", "data": {"username": "u", "email": "", "display_name": ""}},
    ]

    text = export_backstage(catalog)

    assert backstage_would_reject(text) == []
    _, parsed = _round_trip(catalog)
    assert parsed == [
        {"kind": "tool", "data": {"name": "t", "kind": "http_api"}},
        {"kind": "user", "data": {"username": "u"}},
    ]
