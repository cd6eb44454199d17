"""Catalog API shapes. Read serializers render; write serializers only parse and type-check the plain keys of
`catalog.formats.types` and hand them to `catalog.services`, which owns every rule (names, owners, markup,
permissions, uniqueness)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Model
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.api.stored import (
    MALFORMED,
    ObjectListField,
    StringListField,
    StringMapField,
    WholeItemSerializer,
    left_out,
)
from catalog.models import Agent, AIModel, DataClass, ImportRun, Lifecycle, Location, RiskTier, Tool, ToolGrant
from portal.api.serializers import ErrorSerializer

__all__ = ["ErrorSerializer"]  # the API's one error shape, imported from here by the apps' API views

NAME_HELP = "DNS label: lowercase letters, digits and '-', at most 63 characters; unique, case-insensitive."
DATA_CLASS_HELP = (
    "Highest class of data it handles: public, internal, confidential, restricted; null is unknown and counts as "
    "restricted."
)


# --- shared pieces ------------------------------------------------------------------------------------------


class NamedChoiceField(serializers.ChoiceField):
    """A choice field published in OpenAPI as the enum component `enum_name`.

    drf-spectacular names enums after the field, so the `status` of agents, tools and grants (and the `kind` of
    tools and locations) would collide and warn; naming them where they are declared keeps the schema stable.
    """

    def __init__(self, *, enum_name: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def get_name(self) -> str:
        return str(self.target.enum_name)

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.target.choices)}


class RiskFactorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="D data, W writes, E external reach, A autonomy, H human in the loop, C credentials."
    )
    points = serializers.IntegerField(help_text="Points this factor adds to the score.")
    label = serializers.CharField(help_text="Why it scored these points.")  # type: ignore[assignment]  # API field named like a DRF Field attribute


class RiskSerializer(serializers.Serializer):
    """The stored assessment, or (for rows never scored) the stored tier with no factors."""

    tier = NamedChoiceField(
        enum_name="RiskTierEnum", choices=RiskTier.choices, help_text="low, medium, high or critical."
    )
    score = serializers.IntegerField(help_text="Sum of the factor points (0-16).")
    factors = RiskFactorSerializer(many=True, help_text="Each factor of the rubric with its points.")
    floors = serializers.ListField(
        child=serializers.CharField(), help_text="Floor rules that raised the tier above what the score gives."
    )
    rubric_version = serializers.CharField(help_text="Version of the risk rubric that produced this assessment.")
    driver = serializers.CharField(help_text="For agents: the tool whose grant sets the tier, if any.")
    explanation = serializers.CharField(help_text="One sentence explaining the tier.")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("source", "*")
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, instance: Agent | Tool | ToolGrant) -> dict[str, Any]:
        return risk_representation(instance.risk, tier=instance.risk_tier, score=instance.risk_score)


def risk_representation(stored: dict[str, Any] | None, *, tier: str, score: int) -> dict[str, Any]:
    if not isinstance(stored, dict):
        if stored is not None:
            left_out("risk", "not an object", stored)
        stored = {}
    try:
        return {
            "tier": str(stored.get("tier", tier)),
            "score": int(stored.get("score", score)),
            "factors": [
                {"code": str(f["code"]), "points": int(f["points"]), "label": str(f["label"])}
                for f in stored.get("factors", [])
            ],
            "floors": [str(floor) for floor in stored.get("floors", [])],
            "rubric_version": str(stored.get("rubric_version", "")),
            "driver": str(stored.get("driver", "") or ""),
            "explanation": str(stored.get("explanation", tier)),
        }
    except MALFORMED as exc:
        # The stored columns still say the tier and score; the explanation says the assessment must be redone.
        left_out("risk", f"{type(exc).__name__}: {exc}", stored)
        return risk_representation(
            {"explanation": f"{tier} (stored assessment unreadable; re-score to explain)"}, tier=tier, score=score
        )


class NamesField(serializers.ListField):
    """A to-many relation rendered as the names of the related rows (uses prefetched rows)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.CharField())
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, data: Any) -> list[str]:
        return [row.name for row in data.all()]


class LinkSerializer(WholeItemSerializer):
    url = serializers.URLField(max_length=500, help_text="http(s) URL.")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="", help_text="Link text.")


class SkillSerializer(WholeItemSerializer):
    id = serializers.CharField(max_length=200, help_text="Skill id from the agent card.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="", help_text="Skill name.")
    description = serializers.CharField(required=False, allow_blank=True, default="", help_text="What the skill does.")
    tags = StringListField(
        child=serializers.CharField(max_length=100), required=False, default=list, help_text="Tags of the skill."
    )


class CapabilitySerializer(WholeItemSerializer):
    """An operation of a tool with MCP-style hints; null means the descriptor did not say (counts as worst)."""

    name = serializers.CharField(max_length=200, help_text="Operation name, unique within the tool.")
    description = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="What the operation does."
    )
    read_only = serializers.BooleanField(  # type: ignore[assignment]  # API field named like a DRF Field attribute
        allow_null=True, required=False, default=None, help_text="Never modifies anything (readOnlyHint)."
    )
    destructive = serializers.BooleanField(
        allow_null=True, required=False, default=None, help_text="May delete or overwrite (destructiveHint)."
    )
    idempotent = serializers.BooleanField(
        allow_null=True, required=False, default=None, help_text="Repeating it has no further effect."
    )
    open_world = serializers.BooleanField(
        allow_null=True, required=False, default=None, help_text="Reaches outside systems or untrusted content."
    )


class CatalogEntityReadSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True, help_text=NAME_HELP)
    owner = serializers.CharField(source="owner.name", read_only=True, help_text="Name of the owning team.")
    title = serializers.CharField(read_only=True, help_text="Display name.")
    description = serializers.CharField(read_only=True, help_text="Markdown; sanitised when shown.")
    lifecycle = serializers.ChoiceField(choices=Lifecycle.choices, read_only=True, help_text="Lifecycle stage.")
    version = serializers.CharField(read_only=True, help_text="Version it runs, as the owner labels it.")
    repository_url = serializers.CharField(read_only=True, help_text="Source repository.")
    data_class = serializers.ChoiceField(
        choices=DataClass.choices, allow_null=True, read_only=True, help_text=DATA_CLASS_HELP
    )
    tags = StringListField(read_only=True, help_text="Free-form tags.")
    links = LinkSerializer(many=True, read_only=True, help_text="Related links (dashboards, runbooks).")
    annotations = StringMapField(read_only=True, help_text="Annotations from other tools (e.g. Backstage).")
    risk = RiskSerializer(help_text="Risk assessment: tier, score, factors, floors and rubric version.")
    orphaned = serializers.BooleanField(
        read_only=True, help_text="It vanished from the location it was imported from; kept, never auto-deleted."
    )
    created_at = serializers.DateTimeField(read_only=True, help_text="When it was added to the catalog.")
    updated_at = serializers.DateTimeField(read_only=True, help_text="Last change.")


# --- agents -------------------------------------------------------------------------------------------------


class GrantSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="Grant id (see /grants/{id}/).")
    tool = serializers.CharField(source="tool.name", read_only=True, help_text="Tool the agent may call.")
    environment = serializers.CharField(read_only=True, help_text="Environment the grant is for.")
    capability_names = StringListField(read_only=True, help_text="Granted capabilities; empty means all of them.")
    status = NamedChoiceField(
        enum_name="GrantStatusEnum", choices=ToolGrant.Status.choices, read_only=True, help_text="Grant status."
    )
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When an approval lapses.")
    risk_tier = NamedChoiceField(
        enum_name="RiskTierEnum", choices=RiskTier.choices, read_only=True, help_text="Risk tier of the grant."
    )


class AgentSerializer(CatalogEntityReadSerializer):
    status = NamedChoiceField(
        enum_name="AgentStatusEnum",
        choices=Agent.Status.choices,
        read_only=True,
        help_text="Onboarding status; changed by workflows only.",
    )
    agent_type = serializers.ChoiceField(choices=Agent.AgentType.choices, read_only=True, help_text="What it does.")
    autonomy_level = serializers.ChoiceField(
        choices=Agent.Autonomy.choices,
        allow_null=True,
        read_only=True,
        help_text="1 assisted to 5 full autonomy; null is unknown and counts as 5.",
    )
    human_in_loop = serializers.ChoiceField(
        choices=Agent.HumanInLoop.choices,
        allow_null=True,
        read_only=True,
        help_text="How people review its actions; null is unknown and counts as none.",
    )
    runtime = serializers.CharField(read_only=True, help_text="Where it runs: kubernetes, ci, workstation, ...")
    a2a_endpoint = serializers.CharField(read_only=True, help_text="A2A endpoint URL, if it speaks A2A.")
    a2a_protocol_version = serializers.CharField(read_only=True, help_text="A2A protocol version.")
    provider_org = serializers.CharField(read_only=True, help_text="Organisation that provides the agent.")
    environments = StringListField(read_only=True, help_text="Environments it runs in.")
    skills = SkillSerializer(many=True, read_only=True, help_text="Skills from its agent card.")
    models = NamesField(source="models_used", help_text="Models it uses.")
    calls = NamesField(help_text="Agents it calls (A2A or otherwise).")
    tools = StringListField(
        source="requested_tools",
        read_only=True,
        help_text="Tool names its descriptor asks for; grants say what it may actually call.",
    )


class AgentDetailSerializer(AgentSerializer):
    called_by = NamesField(help_text="Agents that call this one.")
    grants = GrantSummarySerializer(many=True, read_only=True, help_text="Its tool grants in every environment.")


class HeldChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The fact that was not written, e.g. autonomy_level.")
    current = serializers.JSONField(help_text="Its value, which stays until the request is approved.")
    requested = serializers.JSONField(help_text="The value asked for.")
    request = serializers.IntegerField(
        allow_null=True, help_text="The approval request that holds it (null: none filed, `message` says why)."
    )
    message = serializers.CharField(help_text="What happened, for people.")


class AgentUpdatedSerializer(AgentDetailSerializer):
    pending = serializers.SerializerMethodField(
        help_text="Changes held for approval instead of written (raising autonomy to 4 or 5): the agent above "
        "keeps its current value until the request named here is approved. Empty when everything was written."
    )

    @extend_schema_field(HeldChangeSerializer(many=True))
    def get_pending(self, agent: Any) -> list[dict[str, Any]]:
        return [
            {
                "field": held.field,
                "current": held.current,
                "requested": held.requested,
                "request": held.request_id,
                "message": held.message,
            }
            for held in self.context.get("held", [])
        ]


class AgentWriteSerializer(serializers.Serializer):
    """Plain keys the services take. On PUT, keys left out go back to their defaults (unknown facts become null)."""

    name = serializers.CharField(max_length=200, help_text=f"{NAME_HELP} Cannot change after creation.")
    owner = serializers.CharField(max_length=200, help_text="Name of the owning team; you must maintain it.")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="", help_text="Title.")
    description = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Markdown; HTML such as <script> is refused."
    )
    lifecycle = serializers.ChoiceField(
        choices=Lifecycle.choices, required=False, default=Lifecycle.EXPERIMENTAL, help_text="Lifecycle stage."
    )
    agent_type = serializers.ChoiceField(
        choices=Agent.AgentType.choices, required=False, default=Agent.AgentType.OTHER, help_text="What it does."
    )
    autonomy_level = serializers.IntegerField(
        min_value=1,
        max_value=5,
        allow_null=True,
        required=False,
        default=None,
        help_text="1 assisted, 2 augmented, 3 spec-centric, 4 selective, 5 full autonomy; null is unknown (counts "
        "as 5).",
    )
    human_in_loop = serializers.ChoiceField(
        choices=Agent.HumanInLoop.choices,
        allow_null=True,
        required=False,
        default=None,
        help_text="per_action, sampled or none; null is unknown (counts as none).",
    )
    data_class = serializers.ChoiceField(
        choices=DataClass.choices, allow_null=True, required=False, default=None, help_text=DATA_CLASS_HELP
    )
    runtime = serializers.ChoiceField(
        choices=Agent.Runtime.choices, allow_blank=True, required=False, default="", help_text="Where it runs."
    )
    models = serializers.ListField(
        child=serializers.CharField(max_length=63), required=False, default=list, help_text="Model names it uses."
    )
    calls = serializers.ListField(
        child=serializers.CharField(max_length=63), required=False, default=list, help_text="Agent names it calls."
    )
    tools = serializers.ListField(
        child=serializers.CharField(max_length=63),
        required=False,
        default=list,
        help_text="Tool names it asks for; request grants to let it call them.",
    )
    repository_url = serializers.URLField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Source repository."
    )
    a2a_endpoint = serializers.URLField(
        max_length=500, required=False, allow_blank=True, default="", help_text="A2A endpoint URL."
    )
    a2a_protocol_version = serializers.CharField(
        max_length=20, required=False, allow_blank=True, default="", help_text="A2A protocol version."
    )
    provider_org = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Organisation providing it."
    )
    version = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="Version it runs."
    )
    environments = serializers.ListField(
        child=serializers.CharField(max_length=63), required=False, default=list, help_text="Environments it runs in."
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, help_text="Free-form tags."
    )
    links = LinkSerializer(many=True, required=False, default=list, help_text="Related links.")
    annotations = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        default=dict,
        help_text="Annotations for other tools (string values).",
    )
    skills = SkillSerializer(many=True, required=False, default=list, help_text="Skills from its agent card.")


# --- tools --------------------------------------------------------------------------------------------------


class ToolGrantSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="Grant id (see /grants/{id}/).")
    agent = serializers.CharField(source="agent.name", read_only=True, help_text="Agent that may call the tool.")
    environment = serializers.CharField(read_only=True, help_text="Environment the grant is for.")
    status = NamedChoiceField(
        enum_name="GrantStatusEnum", choices=ToolGrant.Status.choices, read_only=True, help_text="Grant status."
    )
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When an approval lapses.")
    risk_tier = NamedChoiceField(
        enum_name="RiskTierEnum", choices=RiskTier.choices, read_only=True, help_text="Risk tier of the grant."
    )


class ToolSerializer(CatalogEntityReadSerializer):
    registry_name = serializers.CharField(
        read_only=True, allow_null=True, help_text="Name in the MCP registry, e.g. io.github.org/server."
    )
    kind = NamedChoiceField(
        enum_name="ToolKindEnum", choices=Tool.Kind.choices, read_only=True, help_text="What kind of tool it is."
    )
    status = NamedChoiceField(
        enum_name="ToolStatusEnum",
        choices=Tool.Status.choices,
        read_only=True,
        help_text="Review status; changed by approvals only.",
    )
    endpoint_url = serializers.CharField(read_only=True, help_text="Where agents reach it.")
    transport = serializers.CharField(read_only=True, help_text="stdio, streamable_http, sse or http.")
    auth_scheme = serializers.CharField(read_only=True, help_text="none, api_key, bearer, oauth2, basic or mtls.")
    credential_scope = serializers.ChoiceField(
        choices=Tool.CredentialScope.choices,
        allow_null=True,
        read_only=True,
        help_text="Breadth of the credentials it holds; null is unknown (counts as admin).",
    )
    reach = serializers.ChoiceField(
        choices=Tool.Reach.choices,
        allow_null=True,
        read_only=True,
        help_text="What it can reach; null is unknown (counts as open_world).",
    )
    annotations_trusted = serializers.BooleanField(
        read_only=True, help_text="Capability hints count for risk only once verified or attested by a reviewer."
    )
    capabilities_hash = serializers.CharField(
        read_only=True, help_text="SHA-256 of the capability list; a change voids an attestation."
    )
    capabilities = CapabilitySerializer(many=True, read_only=True, help_text="Operations it offers.")
    secrets = StringListField(source="secret_names", read_only=True, help_text="Secret names; never values.")
    packages = ObjectListField(read_only=True, help_text="Packages it ships as (MCP registry shape).")
    remotes = ObjectListField(read_only=True, help_text="Remote endpoints: {type, url, headers}.")
    definition = serializers.CharField(read_only=True, help_text="OpenAPI definition for HTTP APIs.")


class ToolDetailSerializer(ToolSerializer):
    grants = ToolGrantSummarySerializer(many=True, read_only=True, help_text="Agents granted this tool.")


# --- list rows ----------------------------------------------------------------------------------------------

Row = dict[str, Any]


class ListRows:
    """The agent and tool lists' one rendering: plain rows (`selectors.EntityRows`) rendered field by field as
    `serializer(many=True).data` renders model instances, so the JSON and the schema are the serializer's.

    Model instances, their prefetched relations and DRF's per-field lookups were 70% of an API list's CPU
    (bench.catalog: API list and API search, CPU per request). A row holds `columns` (each field's source, with `__`
    for `.`: `owner__name`) and each to-many relation under its source name: names for a NamesField, rows of the
    related model's columns for a nested serializer. Every value goes through its own field's `to_representation`
    (or a builtin that does the same), so only the reading differs; test_api_lists compares the list with the
    serializer over instances of varied rows."""

    def __init__(self, serializer: serializers.Serializer, model: type[Model]) -> None:
        self.columns: list[str] = []
        self.relations: dict[str, tuple[str, ...]] = {}  # source: the related columns (empty: its names)
        self.fields: list[tuple[str, str | None, Callable[[Any], Any]]] = []
        for field in serializer.fields.values():
            if field.write_only:
                continue
            name = str(field.field_name)
            if isinstance(field, RiskSerializer):  # source "*": it reads three columns
                self.columns += ["risk", "risk_tier", "risk_score"]
                self.fields.append((name, None, _risk_of_row))
                continue
            source = "__".join(field.source_attrs)
            model_field = model._meta.get_field(field.source_attrs[0])
            represent: Callable[[Any], Any]
            if model_field.one_to_many or model_field.many_to_many:
                self.relations[source] = _related_columns(field)
                represent = list if isinstance(field, NamesField) else field.to_representation
            else:
                self.columns.append(source)
                represent = _plain_renderer(field)
            self.fields.append((name, source, represent))

    def render(self, rows: Iterable[Row]) -> list[Row]:
        fields = self.fields
        # As Serializer.to_representation: None stays None without asking the field.
        return [
            {
                name: None if (value := row if key is None else row[key]) is None else represent(value)
                for name, key, represent in fields
            }
            for row in rows
        ]


def _related_columns(field: serializers.Field) -> tuple[str, ...]:
    if isinstance(field, NamesField):
        return ()
    child = getattr(field, "child", None)
    if isinstance(field, serializers.ListSerializer) and isinstance(child, serializers.Serializer):
        return tuple("__".join(f.source_attrs) for f in child.fields.values() if not f.write_only)
    raise TypeError(f"{field.field_name}: no row rendering for a {type(field).__name__} of a relation.")


def _plain_renderer(field: serializers.Field) -> Callable[[Any], Any]:
    """The field's `to_representation`, or the builtin that does exactly what it does."""
    kind = type(field)
    if kind is serializers.CharField:
        return str
    if kind is serializers.IntegerField:
        return int
    return field.to_representation


def _risk_of_row(row: Row) -> dict[str, Any]:
    return risk_representation(row["risk"], tier=row["risk_tier"], score=row["risk_score"])


AGENT_ROWS = ListRows(AgentSerializer(), Agent)
TOOL_ROWS = ListRows(ToolSerializer(), Tool)


class ToolWriteSerializer(serializers.Serializer):
    """Plain keys the services take. On PUT, keys left out go back to their defaults (unknown facts become null)."""

    name = serializers.CharField(max_length=200, help_text=f"{NAME_HELP} Cannot change after creation.")
    owner = serializers.CharField(max_length=200, help_text="Name of the owning team; you must maintain it.")
    registry_name = serializers.CharField(
        max_length=200, allow_null=True, required=False, default=None, help_text="Name in the MCP registry."
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="", help_text="Title.")
    description = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Markdown; HTML such as <script> is refused."
    )
    kind = NamedChoiceField(
        enum_name="ToolKindEnum",
        choices=Tool.Kind.choices,
        required=False,
        default=Tool.Kind.MCP_SERVER,
        help_text="What kind of tool.",
    )
    version = serializers.CharField(max_length=100, required=False, allow_blank=True, default="", help_text="Version.")
    lifecycle = serializers.ChoiceField(
        choices=Lifecycle.choices, required=False, default=Lifecycle.EXPERIMENTAL, help_text="Lifecycle stage."
    )
    endpoint_url = serializers.URLField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Where agents reach it."
    )
    transport = serializers.ChoiceField(
        choices=Tool.Transport.choices, allow_blank=True, required=False, default="", help_text="Transport."
    )
    auth_scheme = serializers.ChoiceField(
        choices=Tool.AuthScheme.choices, allow_blank=True, required=False, default="", help_text="Auth scheme."
    )
    credential_scope = serializers.ChoiceField(
        choices=Tool.CredentialScope.choices,
        allow_null=True,
        required=False,
        default=None,
        help_text="none, delegated, shared or admin; null is unknown (counts as admin).",
    )
    reach = serializers.ChoiceField(
        choices=Tool.Reach.choices,
        allow_null=True,
        required=False,
        default=None,
        help_text="closed, allowlisted or open_world; null is unknown (counts as open_world).",
    )
    data_class = serializers.ChoiceField(
        choices=DataClass.choices, allow_null=True, required=False, default=None, help_text=DATA_CLASS_HELP
    )
    repository_url = serializers.URLField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Source repository."
    )
    definition = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="OpenAPI definition (http_api tools)."
    )
    capabilities = CapabilitySerializer(many=True, required=False, default=list, help_text="Operations it offers.")
    secrets = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=list,
        help_text="Names of the secrets it needs (letters, digits, '_', '-', '.'); never values.",
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, help_text="Free-form tags."
    )
    links = LinkSerializer(many=True, required=False, default=list, help_text="Related links.")
    annotations = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        default=dict,
        help_text="Annotations for other tools (string values).",
    )
    packages = serializers.ListField(
        child=serializers.DictField(), required=False, default=list, help_text="Packages (MCP registry shape)."
    )
    remotes = serializers.ListField(
        child=serializers.DictField(), required=False, default=list, help_text="Remote endpoints: {type, url, headers}."
    )


# --- models, teams, grants, locations -----------------------------------------------------------------------


class AIModelSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63, help_text=NAME_HELP)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="Display name.")
    provider = serializers.CharField(max_length=100, required=False, allow_blank=True, help_text="e.g. Anthropic.")
    model_id = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="Provider's model id.")
    hosting = serializers.ChoiceField(
        choices=AIModel.Hosting.choices, required=False, allow_blank=True, help_text="saas or self_hosted."
    )
    residency = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="Where data is processed, e.g. EU."
    )
    data_class = serializers.ChoiceField(
        choices=DataClass.choices, required=False, allow_blank=True, help_text="Highest data class it is cleared for."
    )


class AIModelReplaceSerializer(serializers.Serializer):
    """PUT replaces every fact (left out means empty); PATCH changes only the keys given."""

    title = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Display name."
    )
    provider = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="e.g. Anthropic."
    )
    model_id = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Provider's model id."
    )
    hosting = serializers.ChoiceField(
        choices=AIModel.Hosting.choices, required=False, allow_blank=True, default="", help_text="saas or self_hosted."
    )
    residency = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="Where data is processed, e.g. EU."
    )
    data_class = serializers.ChoiceField(
        choices=DataClass.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="Highest data class it is cleared for.",
    )


class TeamMemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username", read_only=True, help_text="Member's username.")
    role = serializers.ChoiceField(
        choices=["maintainer", "member"], read_only=True, help_text="Maintainers edit what the team owns."
    )


class TeamSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63, help_text=NAME_HELP)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="Display name.")
    description = serializers.CharField(required=False, allow_blank=True, help_text="What the team does.")
    email = serializers.EmailField(required=False, allow_blank=True, help_text="Team contact address.")
    parent = serializers.CharField(  # type: ignore[assignment]  # API field named like a DRF Field attribute
        source="parent.name", read_only=True, allow_null=True, help_text="Parent team's name, if any."
    )


class TeamDetailSerializer(TeamSerializer):
    members = TeamMemberSerializer(
        source="memberships", many=True, read_only=True, help_text="Members and their roles."
    )


class GrantSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="Grant id.")
    agent = serializers.CharField(source="agent.name", read_only=True, help_text="Agent the grant is for.")
    tool = serializers.CharField(source="tool.name", read_only=True, help_text="Tool the agent may call.")
    environment = serializers.CharField(read_only=True, help_text="Environment the grant is for.")
    capability_names = StringListField(
        read_only=True,
        help_text=(
            "Capabilities covered. A request may leave it empty (every capability the tool has when approved); "
            "approval freezes the list, and an approved grant covers nothing else."
        ),
    )
    coverage = serializers.SerializerMethodField(
        help_text="The tool's capabilities split into `covered` and `not_covered` by this grant (and `missing`: "
        "covered names the tool no longer has). A capability added to the tool later is not covered."
    )
    credential_scope = serializers.ChoiceField(
        choices=Tool.CredentialScope.choices,
        allow_null=True,
        read_only=True,
        help_text="Overrides the tool's credential scope; null keeps the tool's.",
    )
    status = NamedChoiceField(
        enum_name="GrantStatusEnum",
        choices=ToolGrant.Status.choices,
        read_only=True,
        help_text="Where the grant stands; approvals change it.",
    )
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When an approval lapses.")
    approved_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When it was approved.")
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, allow_null=True, help_text="Who asked for it."
    )
    risk = RiskSerializer(help_text="Risk of this agent calling this tool (capabilities and scope as granted).")
    created_at = serializers.DateTimeField(read_only=True, help_text="When it was first requested.")
    updated_at = serializers.DateTimeField(read_only=True, help_text="Last change.")

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                key: {"type": "array", "items": {"type": "string"}} for key in ("covered", "not_covered", "missing")
            },
        }
    )
    def get_coverage(self, grant: ToolGrant) -> dict[str, list[str]]:
        from catalog.facts import grant_coverage

        return grant_coverage(grant, [capability.name for capability in grant.tool.capabilities.all()])


class GrantRequestSerializer(serializers.Serializer):
    agent = serializers.SlugRelatedField(
        slug_field="name", queryset=Agent.objects.all(), help_text="Name of the agent; you must maintain its team."
    )
    tool = serializers.SlugRelatedField(slug_field="name", queryset=Tool.objects.all(), help_text="Name of the tool.")
    environment = serializers.CharField(
        max_length=63, required=False, default="production", help_text="Environment (DNS label)."
    )
    capability_names = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=list,
        help_text="Capabilities to grant; empty asks for all of them.",
    )
    credential_scope = serializers.ChoiceField(
        choices=Tool.CredentialScope.choices,
        allow_null=True,
        required=False,
        default=None,
        help_text="Narrower credentials than the tool's, if the grant uses them.",
    )


class LocationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="Location id.")
    kind = NamedChoiceField(
        enum_name="LocationKindEnum", choices=Location.Kind.choices, read_only=True, help_text="url, git or upload."
    )
    target = serializers.CharField(read_only=True, help_text="Descriptor URL, git repository URL or upload name.")
    path = serializers.CharField(read_only=True, help_text="File or folder inside a git repository.")
    default_owner = serializers.CharField(
        source="default_owner.name",
        read_only=True,
        allow_null=True,
        help_text="Team that owns entities whose descriptor names no owner.",
    )
    enabled = serializers.BooleanField(read_only=True, help_text="Whether scheduled syncs run.")
    last_synced_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When it last synced.")
    last_outcome = serializers.ChoiceField(
        choices=Location.Outcome.choices, read_only=True, help_text="never, ok, partial or failed."
    )
    last_report = serializers.DictField(read_only=True, help_text="Summary of the last sync's import report.")
    created_at = serializers.DateTimeField(read_only=True, help_text="When it was registered.")


class LocationCreateSerializer(serializers.Serializer):
    kind = NamedChoiceField(
        enum_name="LocationSourceKindEnum",
        choices=[Location.Kind.URL, Location.Kind.GIT],
        help_text="url: one descriptor file over https; git: a repository cloned over https.",
    )
    target = serializers.CharField(max_length=2000, help_text="Descriptor URL or git repository URL.")
    path = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="File or folder inside a repository."
    )
    default_owner = serializers.CharField(
        max_length=63,
        required=False,
        allow_null=True,
        default=None,
        help_text="Team that owns entities whose descriptor names no owner; you must maintain it (or be an admin).",
    )


# --- import -------------------------------------------------------------------------------------------------


class ImportJsonSerializer(serializers.Serializer):
    content = serializers.CharField(
        trim_whitespace=False, help_text="Descriptor text: Backstage YAML, MCP server.json or A2A agent card."
    )
    filename = serializers.CharField(
        max_length=300,
        required=False,
        default="catalog-info.yaml",
        help_text="Name used in error messages; the format is detected from the content.",
    )
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Validate and report without writing anything."
    )
    owner = serializers.CharField(
        max_length=63,
        required=False,
        allow_blank=True,
        default="",
        help_text="Team for descriptors that name no owner (MCP server.json, A2A cards).",
    )
    adopt = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Take over entities another source owns (platform admins; audited). Without it such an entity "
        "is a conflict (409) and nothing is imported.",
    )


class ImportUploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False), help_text="One or more descriptor files."
    )
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Validate and report without writing anything."
    )
    owner = serializers.CharField(
        max_length=63,
        required=False,
        allow_blank=True,
        default="",
        help_text="Team for descriptors that name no owner (MCP server.json, A2A cards).",
    )


class ImportIssueSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="File name the problem is in.")  # type: ignore[assignment]  # API field named like a DRF Field attribute
    index = serializers.IntegerField(allow_null=True, help_text="0-based document index; null for the whole file.")
    field = serializers.CharField(help_text="Field path, e.g. spec.owner.")
    message = serializers.CharField(help_text="What was wrong and what is accepted.")


class ImportOutcomeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="agent, tool, team, user or model.")
    name = serializers.CharField(help_text="Entity name.")
    source = serializers.CharField(help_text="File it came from.")  # type: ignore[assignment]  # API field named like a DRF Field attribute
    index = serializers.IntegerField(allow_null=True, help_text="0-based document index.")
    outcome = serializers.CharField(help_text="created, updated, unchanged or failed.")


class HeldImportChangeSerializer(HeldChangeSerializer):
    kind = serializers.CharField(help_text="agent.")
    name = serializers.CharField(help_text="Entity name.")


class ImportReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(help_text="True when nothing was written.")
    created = serializers.IntegerField(help_text="Entities created.")
    updated = serializers.IntegerField(help_text="Entities changed.")
    unchanged = serializers.IntegerField(help_text="Entities whose facts already matched.")
    skipped = serializers.IntegerField(help_text="Documents the catalog does not keep (e.g. a Backstage System).")
    failed = serializers.IntegerField(help_text="Documents or entities that failed; none of them was written.")
    errors = ImportIssueSerializer(many=True, help_text="Every problem, with file, document and field.")  # type: ignore[assignment]  # API field named like a DRF Field attribute
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Values left out, with reasons.")
    skipped_items = serializers.ListField(child=serializers.DictField(), help_text="What was skipped and why.")
    entities = ImportOutcomeSerializer(many=True, help_text="The outcome of each entity.")
    held = HeldImportChangeSerializer(
        many=True, help_text="Changes not written because they wait for an approval (autonomy raised to 4 or 5)."
    )


# The import's 400: the one error shape, whose `fields` carries the report when documents failed, or names the bad
# request fields (`files`, `content`, ...) when the request itself was wrong. Written as a schema: a serializer
# cannot say "a report, or any other field with its messages".
IMPORT_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message", "fields"],
            "properties": {
                "status": {"type": "integer", "description": "400."},
                "code": {"type": "string", "description": "`invalid`."},
                "message": {"type": "string", "description": "How many documents failed, or which fields are bad."},
                "fields": {
                    "type": "object",
                    "description": "`report` when documents or entities failed (the same shape as a successful "
                    "answer); otherwise each bad request field and what was wrong with it.",
                    "properties": {"report": {"$ref": "#/components/schemas/ImportReport"}},
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


class ImportRunSerializer(serializers.ModelSerializer):
    """An import run by a worker (too large for the request): its phase, then its report."""

    report = ImportReportSerializer(allow_null=True, read_only=True, help_text="Once `done`; null until then.")

    class Meta:
        model = ImportRun
        fields = [
            "id", "state", "created_at", "started_at", "finished_at", "dry_run", "adopt", "default_owner", "files",
            "input_bytes", "entities", "problem", "report",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            name: {"help_text": text}
            for name, text in {
                "id": "The run's id; GET /api/v1/imports/{id}/ follows it.",
                "state": "queued, parsing, writing (`entities` in one transaction), done or failed.",
                "created_at": "When it was queued.",
                "started_at": "When a worker took it.",
                "finished_at": "When it ended (done or failed).",
                "dry_run": "Validated and reported without writing.",
                "adopt": "Entities another source owns are taken over (platform admins; audited).",
                "default_owner": "Team for descriptors that name no owner.",
                "files": "Inputs (files or pasted text).",
                "input_bytes": "Their total size.",
                "entities": "Entities parsed from the inputs, known once parsing ends.",
                "problem": "Why it failed (nothing was saved then).",
            }.items()
        }
