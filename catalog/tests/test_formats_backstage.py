"""Backstage catalog-info.yaml parsing: mapping, skips, and per-document errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from catalog.formats import ParseResult, parse_backstage_yaml
from catalog.formats.types import DNS_LABEL_RULE

SAMPLE = Path(__file__).parent / "samples" / "backstage" / "catalog-info.yaml"


def _parse(*documents: str) -> ParseResult:
    text = "---\n".join(textwrap.dedent(document) for document in documents)
    return parse_backstage_yaml(text, source="catalog-info.yaml")


def _agent(name: str = "helper", *, owner: str = "team-a", extra_metadata: str = "", extra_spec: str = "") -> str:
    return f"""\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
{textwrap.indent(textwrap.dedent(extra_metadata), "  ")}
spec:
  type: ai-agent
  lifecycle: production
  owner: {owner}
{textwrap.indent(textwrap.dedent(extra_spec), "  ")}
"""


def test_it_reads_the_mixed_sample_catalog() -> None:
    result = parse_backstage_yaml(SAMPLE.read_bytes(), source="catalog-info.yaml")

    assert result.format == "backstage"
    assert result.errors == []
    assert [(entity.kind, entity.name, entity.index) for entity in result.entities] == [
        ("team", "platform-ai", 0),
        ("user", "jdoe", 1),
        ("agent", "release-notes-agent", 2),
        ("tool", "github-mcp", 4),
        ("tool", "warehouse-openapi", 5),
    ]
    assert [(skip.index, skip.kind) for skip in result.skipped] == [(3, "Component"), (6, "System")]
    assert "type 'service' is not catalogued" in result.skipped[0].reason
    assert "kind 'System' is not catalogued" in result.skipped[1].reason


def test_it_maps_every_agent_field_of_the_sample() -> None:
    result = parse_backstage_yaml(SAMPLE.read_bytes(), source="catalog-info.yaml")

    agent = next(entity for entity in result.entities if entity.kind == "agent")

    assert agent.data == {
        "name": "release-notes-agent",
        "title": "Release Notes Agent",
        "description": "Drafts release notes from merged pull requests and posts them for review.",
        "tags": ["python", "release"],
        "links": [{"url": "https://grafana.acme.example/d/release-notes", "title": "Dashboard"}],
        "repository_url": "https://github.com/acme/release-notes-agent/tree/main/",
        "annotations": {"backstage.io/techdocs-ref": "dir:.", "pagerduty.com/service-id": "PX1234"},
        "owner": "platform-ai",
        "lifecycle": "production",
        "tools": ["github-mcp", "warehouse-openapi"],
        "calls": ["changelog-checker"],
        "agent_type": "coding",
        "autonomy_level": 3,
        "human_in_loop": "per_action",
        "data_class": "internal",
        "runtime": "ci",
        "models": ["claude-sonnet-4", "gpt-4o-mini"],
        "environments": ["staging", "production"],
        "version": "1.2.0",
    }
    assert agent.warnings == []


def test_it_maps_teams_users_and_tools_of_the_sample() -> None:
    result = parse_backstage_yaml(SAMPLE.read_bytes(), source="catalog-info.yaml")
    by_name = {entity.name: entity.data for entity in result.entities}

    assert by_name["platform-ai"] == {
        "name": "platform-ai",
        "title": "Platform AI",
        "description": "Runs the shared AI platform and its agents.",
        "email": "platform-ai@acme.example",
        "parent": "engineering",
        "members": ["jdoe", "asmith"],
    }
    assert by_name["jdoe"] == {
        "username": "jdoe",
        "email": "jenny.doe@acme.example",
        "display_name": "Jenny Doe",
        "teams": ["platform-ai"],
    }
    mcp = by_name["github-mcp"]
    assert mcp["kind"] == "mcp_server"
    assert mcp["transport"] == "streamable_http"
    assert mcp["endpoint_url"] == "https://api.githubcopilot.com/mcp/"
    assert mcp["remotes"] == [
        {"type": "streamable-http", "url": "https://api.githubcopilot.com/mcp/", "headers": ["Authorization"]}
    ]
    assert mcp["capabilities"][1] == {
        "name": "get_file_contents",
        "description": None,
        "read_only": True,
        "destructive": None,
        "idempotent": None,
        "open_world": None,
    }
    openapi = by_name["warehouse-openapi"]
    assert openapi["kind"] == "http_api"
    assert openapi["owner"] == "data-eng"
    assert openapi["definition"].startswith("openapi: 3.0.3\n")


def test_it_keeps_script_in_a_description_as_data() -> None:
    result = parse_backstage_yaml(SAMPLE.read_bytes(), source="catalog-info.yaml")

    openapi = next(entity for entity in result.entities if entity.name == "warehouse-openapi")

    assert openapi.data["description"] == "<script>alert('xss')</script> Warehouse REST API"


@pytest.mark.parametrize("owner", ["group:default/team-a", "group:team-a", "team-a", "Group:team-a"])
def test_it_accepts_every_owner_reference_form(owner: str) -> None:
    result = _parse(_agent(owner=owner))

    [entity] = result.entities
    assert entity.data["owner"] == "team-a"


def test_it_warns_when_an_agent_is_owned_by_a_user() -> None:
    [entity] = _parse(_agent(owner="user:jdoe")).entities

    assert entity.data["owner"] == "jdoe"
    assert "is a User" in entity.warnings[0]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Frobnicator\nmetadata: {name: x}\n",
            "kind 'Frobnicator' is not catalogued",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
            "not a Backstage catalog entity",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: g}\n"
            "spec: {type: graphql, lifecycle: production, owner: a, definition: x}\n",
            "API of type 'graphql' is not catalogued",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata: {name: db}\n"
            "spec: {type: database, owner: a}\n",
            "Resource of type 'database'",
        ),
    ],
)
def test_it_skips_what_it_does_not_catalogue_with_a_reason(document: str, reason: str) -> None:
    result = _parse(document)

    assert result.errors == []
    [skipped] = result.skipped
    assert reason in skipped.reason


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        (_agent("Helper_Agent"), "metadata.name", DNS_LABEL_RULE),
        (_agent("a" * 64), "metadata.name", DNS_LABEL_RULE),
        (_agent().replace("  owner: team-a\n", ""), "spec.owner", "is required"),
        (_agent(owner='"group:"'), "spec.owner", "is not a valid entity reference"),
        (_agent().replace("  lifecycle: production\n", ""), "spec.lifecycle", "is required"),
        (_agent().replace("  type: ai-agent\n", ""), "spec.type", "is required"),
        (_agent().replace("  name: helper\n", "  title: Helper\n"), "metadata.name", "is required"),
        (_agent().replace("apiVersion: backstage.io/v1alpha1\n", ""), "apiVersion", "is required"),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: w}\n"
            "spec: {type: openapi, lifecycle: production, owner: a}\n",
            "spec.definition",
            "is required for an openapi API",
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: t}\nspec: {type: team}\n",
            "spec.children",
            "is required",
        ),
        ("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: u}\nspec: {}\n", "spec.memberOf", "required"),
        (
            _agent(extra_metadata='annotations:\n  agentportal.io/autonomy-level: "9"\n'),
            'metadata.annotations["agentportal.io/autonomy-level"]',
            "from 1 to 5",
        ),
        (
            _agent(extra_metadata="labels:\n  agentportal.io/data-class: secret\n"),
            'metadata.labels["agentportal.io/data-class"]',
            "must be one of public, internal, confidential, restricted",
        ),
        (
            _agent(extra_metadata="annotations:\n  agentportal.io/autonomy-level: 3\n"),
            'metadata.annotations["agentportal.io/autonomy-level"]',
            "must be strings",
        ),
        (
            _agent(extra_metadata='annotations:\n  agentportal.io/skills: \'[{"name": "no id"}]\'\n'),
            'metadata.annotations["agentportal.io/skills"]',
            "needs an id and a name",
        ),
        ("- just\n- a list\n", "", "must be a mapping, not a list"),
    ],
)
def test_it_reports_bad_documents_with_source_index_and_field(document: str, field: str, message: str) -> None:
    result = _parse(_agent("fine"), document)

    assert [entity.name for entity in result.entities] == ["fine"]
    assert result.errors, "expected an error"
    matching = [error for error in result.errors if error.field == field]
    assert matching, result.errors
    assert matching[0].source == "catalog-info.yaml"
    assert matching[0].index == 1
    assert message in matching[0].message


def test_it_reports_duplicate_names_naming_both_indices() -> None:
    result = _parse(_agent("helper"), _agent("other"), _agent("helper"))

    assert [entity.index for entity in result.entities] == [0, 1]
    [error] = result.errors
    assert (error.source, error.index, error.field) == ("catalog-info.yaml", 2, "metadata.name")
    assert "duplicate agent name 'helper' in documents 0 and 2" in error.message


def test_it_compares_names_case_insensitively_like_backstage() -> None:
    user = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {{name: {}}}\nspec: {{memberOf: []}}\n"

    result = _parse(user.format("JDoe"), user.format("jdoe"))

    [error] = result.errors
    assert "documents 0 and 1" in error.message


def test_it_allows_the_same_name_for_different_kinds() -> None:
    team = (
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: helper}\nspec: {type: team, children: []}\n"
    )

    result = _parse(_agent("helper"), team)

    assert result.errors == []
    assert [entity.kind for entity in result.entities] == ["agent", "team"]


def test_it_leaves_out_a_lifecycle_it_does_not_know_with_a_warning() -> None:
    [entity] = _parse(_agent().replace("lifecycle: production", "lifecycle: beta")).entities

    assert "lifecycle" not in entity.data
    assert "'beta'" in entity.warnings[0]


def test_it_warns_about_unknown_agent_portal_keys_and_disagreeing_labels() -> None:
    metadata = """\
    labels:
      agentportal.io/runtime: ci
    annotations:
      agentportal.io/runtime: kubernetes
      agentportal.io/autonmy-level: "2"
    """

    [entity] = _parse(_agent(extra_metadata=metadata)).entities

    assert entity.data["runtime"] == "kubernetes"
    assert any("disagree" in warning for warning in entity.warnings)
    assert any("agentportal.io/autonmy-level is not an Agent Portal key" in w for w in entity.warnings)


def test_it_reads_lists_as_comma_separated_or_json() -> None:
    metadata = """\
    annotations:
      agentportal.io/models: " gpt-4o , claude-sonnet-4 ,"
      agentportal.io/environments: '["eu, west", "us"]'
    """

    [entity] = _parse(_agent(extra_metadata=metadata)).entities

    assert entity.data["models"] == ["gpt-4o", "claude-sonnet-4"]
    assert entity.data["environments"] == ["eu, west", "us"]


def test_it_ignores_non_component_refs_in_depends_on_with_a_warning() -> None:
    [entity] = _parse(_agent(extra_spec="dependsOn: [resource:orders-db, component:pricing-agent]")).entities

    assert entity.data["calls"] == ["pricing-agent"]
    assert "resource:orders-db" in entity.warnings[0]


def test_it_does_not_fetch_substituted_definitions() -> None:
    document = """\
    apiVersion: backstage.io/v1alpha1
    kind: API
    metadata: {name: petstore}
    spec:
      type: openapi
      lifecycle: production
      owner: team-a
      definition:
        $text: https://petstore.swagger.io/v2/swagger.json
    """

    [entity] = _parse(document).entities

    assert "definition" not in entity.data
    assert "not fetched" in entity.warnings[0]


def test_it_ignores_spec_fields_marked_as_export_placeholders() -> None:
    metadata = "annotations:\n  agentportal.io/placeholders: spec.owner,spec.lifecycle\n"

    [entity] = _parse(_agent(extra_metadata=metadata)).entities

    assert "owner" not in entity.data
    assert "lifecycle" not in entity.data


def test_it_reads_models_as_resources_of_type_ai_model() -> None:
    document = """\
    apiVersion: backstage.io/v1alpha1
    kind: Resource
    metadata:
      name: claude-sonnet-4.5
      title: Claude Sonnet 4.5
      labels: {agentportal.io/hosting: saas, agentportal.io/data-class: confidential}
      annotations:
        agentportal.io/model-provider: Anthropic
        agentportal.io/model-id: claude-sonnet-4-5
        agentportal.io/residency: EU
    spec: {type: ai-model, owner: ml-platform}
    """

    [entity] = _parse(document).entities

    assert (entity.kind, entity.name) == ("model", "claude-sonnet-4.5")
    assert entity.data == {
        "name": "claude-sonnet-4.5",
        "title": "Claude Sonnet 4.5",
        "provider": "Anthropic",
        "model_id": "claude-sonnet-4-5",
        "hosting": "saas",
        "residency": "EU",
        "data_class": "confidential",
    }


def test_it_reads_a_bad_document_without_losing_the_rest() -> None:
    result = _parse(_agent("first"), "kind: [unclosed\n", _agent("third"))

    assert [entity.name for entity in result.entities] == ["first", "third"]
    [error] = result.errors
    assert error.index == 1
    assert "invalid YAML" in error.message
