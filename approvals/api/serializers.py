"""Approvals API shapes. Read serializers render a request with what a reviewer needs to decide; write serializers
only parse and type-check, and `approvals.services` owns every rule (who may decide, comments, states, races)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals import decisions as approvals_decisions
from approvals import selectors, services
from approvals.checks import CHECK_TITLES
from approvals.models import ApprovalRequest, CheckRun, Decision, PolicyStage
from catalog.api.serializers import NamedChoiceField, RiskFactorSerializer
from catalog.models import Agent, RiskTier, Tool, ToolGrant

TIER_HELP = "Risk tier: low, medium, high or critical."
# What a method field returning `str | None` is published as (OpenApiTypes.STR would say it is never null).
NULLABLE_STR = serializers.CharField(allow_null=True)
# The columns' lengths: longer values would fail on PostgreSQL instead of answering 400.
STAGE_NAME_MAX = int(PolicyStage._meta.get_field("name").max_length or 0)
STAGE_ROLE_MAX = int(PolicyStage._meta.get_field("role").max_length or 0)


def _tier_field(**kwargs: Any) -> NamedChoiceField:
    return NamedChoiceField(enum_name="RiskTierEnum", choices=RiskTier.choices, **kwargs)


# --- reading a request --------------------------------------------------------------------------------------


class ApprovalRiskSerializer(serializers.Serializer):
    """The assessment the request was scored with (at submission, or after the risk check re-scored it)."""

    tier = _tier_field(read_only=True, help_text=TIER_HELP)
    score = serializers.IntegerField(read_only=True, allow_null=True, help_text="Sum of the factor points.")
    factors = RiskFactorSerializer(many=True, read_only=True, help_text="Each factor of the rubric with its points.")
    floors = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Floor rules that raised the tier above the score."
    )
    rubric_version = serializers.CharField(read_only=True, help_text="Version of the risk rubric used.")
    explanation = serializers.CharField(read_only=True, help_text="One sentence explaining the tier.")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        stored = instance or {}
        return {
            "tier": stored.get("tier", ""),
            "score": stored.get("score"),
            "factors": [
                {"code": f.get("code", ""), "points": f.get("points", 0), "label": f.get("label", "")}
                for f in stored.get("factors", [])
            ],
            "floors": list(stored.get("floors", [])),
            "rubric_version": stored.get("rubric_version", ""),
            "explanation": stored.get("explanation", ""),
        }


class CheckRunSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True, help_text="Check id, e.g. `versions_pinned`.")
    title = serializers.SerializerMethodField(help_text="What the check looks at, for people.")
    round = serializers.IntegerField(read_only=True, help_text="Review round the check ran for.")
    status = NamedChoiceField(
        enum_name="CheckStatusEnum",
        choices=CheckRun.Status.choices,
        read_only=True,
        help_text="pending and running are still under way; failed and error send the request back.",
    )
    summary = serializers.CharField(read_only=True, help_text="The outcome in one line.")
    attempts = serializers.IntegerField(read_only=True, help_text="How often a worker started it.")
    started_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When the last attempt began.")
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When it finished.")

    def get_title(self, check: CheckRun) -> str:
        return CHECK_TITLES.get(check.name, check.name)


class DecisionSerializer(serializers.Serializer):
    round = serializers.IntegerField(read_only=True, help_text="Review round of the decision.")
    stage_index = serializers.IntegerField(read_only=True, help_text="0-based stage of the policy it decided.")
    stage_name = serializers.CharField(read_only=True, help_text="Name of that stage.")
    reviewer = serializers.CharField(source="reviewer.username", read_only=True, help_text="Who decided.")
    outcome = NamedChoiceField(
        enum_name="DecisionOutcomeEnum",
        choices=Decision.Outcome.choices,
        read_only=True,
        help_text="approve, reject or request_changes.",
    )
    comment = serializers.CharField(read_only=True, help_text="The reviewer's reasons.")
    facts_fingerprint = serializers.CharField(read_only=True, help_text="Fingerprint of the facts decided on.")
    created_at = serializers.DateTimeField(read_only=True, help_text="When it was decided.")


class RoundSerializer(serializers.Serializer):
    round = serializers.IntegerField(read_only=True, help_text="Round number.")
    submitted_at = serializers.CharField(read_only=True, help_text="When the round started.")
    reason = serializers.CharField(
        read_only=True, default="submitted", help_text="submitted, or facts_changed when a change of facts started it."
    )
    changed_by = serializers.CharField(read_only=True, default="", help_text="Who changed the facts, if so.")
    changes = serializers.DictField(
        child=serializers.DictField(), read_only=True, default=dict, help_text="Facts changed: {fact: {before, after}}."
    )


class RequestStageSerializer(serializers.Serializer):
    index = serializers.IntegerField(read_only=True, help_text="0-based position in the policy.")
    name = serializers.CharField(read_only=True, help_text="Stage name, e.g. `Security review`.")
    role = serializers.CharField(read_only=True, help_text="Group whose members decide this stage.")
    sla_hours = serializers.IntegerField(read_only=True, help_text="Hours a stage may wait before reminders.")
    status = NamedChoiceField(
        enum_name="StageStatusEnum",
        choices=["decided", "current", "waiting"],
        read_only=True,
        help_text="decided in this round, current (waiting for a decision now) or waiting (not reached).",
    )
    decision = DecisionSerializer(read_only=True, allow_null=True, help_text="The decision of this round, if any.")


class RequestPolicySerializer(serializers.Serializer):
    """The policy snapshot the request is reviewed under; later policy edits do not change it."""

    tier = _tier_field(read_only=True, help_text="Tier whose policy applies.")
    auto_approve = serializers.BooleanField(read_only=True, help_text="Approved after passing checks, no people.")
    requires_attestation = serializers.BooleanField(read_only=True, help_text="The owner attests the descriptor.")
    validity_days = serializers.IntegerField(read_only=True, help_text="How long the approval lasts.")
    exclude_owning_team = serializers.BooleanField(read_only=True, help_text="Nobody from the owning team may approve.")


class TimelineItemSerializer(serializers.Serializer):
    at = serializers.DateTimeField(read_only=True, help_text="When it happened.")
    kind = NamedChoiceField(
        enum_name="TimelineKindEnum",
        choices=["event", "check", "decision", "notification"],
        read_only=True,
        help_text="What kind of item.",
    )
    title = serializers.CharField(read_only=True, help_text="What happened.")
    detail = serializers.CharField(read_only=True, help_text="Details (changes, summary, comment or target).")
    status = serializers.CharField(read_only=True, help_text="Status of a check, decision or notification.")
    actor = serializers.CharField(read_only=True, help_text="Who did it (username, token or system).")


class FieldChangeSerializer(serializers.Serializer):
    before = serializers.JSONField(read_only=True, help_text="Value in the previous round.")
    after = serializers.JSONField(read_only=True, help_text="Value in this round.")


class HintsAttestSerializer(serializers.Serializer):
    capabilities_hash = serializers.CharField(
        max_length=64, help_text="The `hints.capabilities_hash` you reviewed; 409 when the capabilities changed since."
    )
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False, help_text="Why you vouch for them."
    )


class HintsAttestationSerializer(serializers.Serializer):
    attested_by = serializers.CharField(source="attested_by.username", read_only=True, allow_null=True)
    attested_at = serializers.DateTimeField(read_only=True)
    capabilities_hash = serializers.CharField(read_only=True)
    declared = serializers.ListField(child=serializers.DictField(), read_only=True)
    observed = serializers.ListField(
        child=serializers.DictField(), read_only=True, allow_null=True, help_text="Null when not introspected."
    )
    observed_note = serializers.CharField(read_only=True)
    server = serializers.DictField(read_only=True)
    differences = serializers.ListField(child=serializers.CharField(), read_only=True)
    comment = serializers.CharField(read_only=True)


class HintsRowSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    declared = serializers.DictField(read_only=True, allow_null=True, help_text="Declared hints; null if undeclared.")
    observed = serializers.DictField(
        read_only=True, allow_null=True, help_text="What the live server listed (this round's MCP check)."
    )


class HintsSerializer(serializers.Serializer):
    tool = serializers.CharField(source="tool.name", read_only=True)
    capabilities_hash = serializers.CharField(read_only=True, help_text="Send it back to attest these hints.")
    trusted = serializers.BooleanField(read_only=True, help_text="Whether the rubric trusts the hints now.")
    rows = HintsRowSerializer(many=True, read_only=True)
    differences = serializers.ListField(child=serializers.CharField(), read_only=True)
    attestation = HintsAttestationSerializer(read_only=True, allow_null=True)
    can_attest = serializers.BooleanField(read_only=True)
    why_not = serializers.CharField(read_only=True, allow_null=True)


class ApprovalRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="Request id.")
    kind = NamedChoiceField(
        enum_name="ApprovalKindEnum",
        choices=ApprovalRequest.Kind.choices,
        read_only=True,
        help_text="agent_onboarding, tool_onboarding, tool_grant, recertification, re_review or autonomy_change.",
    )
    state = NamedChoiceField(
        enum_name="ApprovalStateEnum",
        choices=ApprovalRequest.State.choices,
        read_only=True,
        help_text="Where the request stands in the workflow.",
    )
    title = serializers.CharField(read_only=True, help_text="What is asked for, for people.")
    agent = serializers.SerializerMethodField(help_text="Agent under review (of the grant, for grants).")
    tool = serializers.SerializerMethodField(help_text="Tool under review (of the grant, for grants).")
    grant = serializers.IntegerField(
        source="grant_id", read_only=True, allow_null=True, help_text="Grant id for tool_grant requests."
    )
    environment = serializers.SerializerMethodField(help_text="Environment of the grant, for grants.")
    tier = _tier_field(read_only=True, help_text=TIER_HELP)
    owning_team = serializers.CharField(source="owning_team.name", read_only=True, help_text="Owning team's name.")
    requester = serializers.CharField(source="requester.username", read_only=True, help_text="Who asked.")
    round = serializers.IntegerField(read_only=True, help_text="Review round; a resubmission starts the next one.")
    current_stage = serializers.IntegerField(read_only=True, help_text="0-based stage being decided (in review).")
    current_stage_name = serializers.SerializerMethodField(help_text="Name of the stage being decided, if any.")
    current_role = serializers.CharField(read_only=True, help_text="Group that decides now; empty when none.")
    due_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When the current stage is due.")
    submitted_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="Submitted (this round).")
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When it was closed.")
    approval_expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When an approval lapses (recertification opens before)."
    )
    created_at = serializers.DateTimeField(read_only=True, help_text="When it was first submitted.")
    updated_at = serializers.DateTimeField(read_only=True, help_text="Last change.")

    @extend_schema_field(NULLABLE_STR)
    def get_agent(self, request: ApprovalRequest) -> str | None:
        agent = request.grant.agent if request.grant is not None else request.agent
        return agent.name if agent is not None else None

    @extend_schema_field(NULLABLE_STR)
    def get_tool(self, request: ApprovalRequest) -> str | None:
        tool = request.grant.tool if request.grant is not None else request.tool
        return tool.name if tool is not None else None

    @extend_schema_field(NULLABLE_STR)
    def get_environment(self, request: ApprovalRequest) -> str | None:
        return request.grant.environment if request.grant is not None else None

    @extend_schema_field(NULLABLE_STR)
    def get_current_stage_name(self, request: ApprovalRequest) -> str | None:
        stage = request.stage
        return str(stage["name"]) if stage else None


class ApprovalRequestDetailSerializer(ApprovalRequestSerializer):
    """A request with everything a reviewer needs; `can_decide` and `why_not` are for the caller."""

    justification = serializers.CharField(read_only=True, help_text="Why the requester asks.")
    attested_by = serializers.CharField(
        source="attested_by.username", read_only=True, allow_null=True, help_text="Owner who attested, if any."
    )
    attested_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="When the owner attested.")
    previous = serializers.IntegerField(
        source="previous_id", read_only=True, allow_null=True, help_text="Earlier request this one follows up."
    )
    risk = ApprovalRiskSerializer(help_text="Risk assessment: tier, score and the factors behind it.")
    bound_facts = serializers.DictField(
        read_only=True,
        help_text="The facts under review (flat); a change of any of them while open starts a new round.",
    )
    facts_fingerprint = serializers.CharField(
        read_only=True, help_text="sha256 of the facts under review; send it back to approve (`decide`)."
    )
    proposed_changes = serializers.DictField(
        child=FieldChangeSerializer(),
        read_only=True,
        help_text="An autonomy change's requested facts, {field: {before, after}}: held by the catalog until "
        "approved; `bound_facts` and the risk are those of the agent with them. Empty for other kinds.",
    )
    policy = serializers.SerializerMethodField(help_text="The policy snapshot this request is reviewed under.")
    stages = serializers.SerializerMethodField(help_text="The policy's stages and where each stands this round.")
    checks = serializers.SerializerMethodField(help_text="Automated checks of the current round.")
    decisions = serializers.SerializerMethodField(help_text="Every decision, all rounds, oldest first.")
    timeline = serializers.SerializerMethodField(help_text="Events, checks, decisions and notifications in order.")
    changes_since_last_round = serializers.SerializerMethodField(
        help_text="Bound facts (and tier) that changed since the previous round; empty in round 1."
    )
    rounds = serializers.SerializerMethodField(help_text="Every round: when and why it started, and what changed.")
    hints = serializers.SerializerMethodField(
        help_text="For a tool (or a grant's tool): declared hints beside the live server's, and their attestation."
    )
    can_decide = serializers.SerializerMethodField(help_text="Whether you may decide the current stage now.")
    why_not = serializers.SerializerMethodField(help_text="Why you may not decide; null when you may.")

    def _decisions(self, request: ApprovalRequest) -> list[Decision]:
        cache: dict[int, list[Decision]] = self.context.setdefault("_decisions", {})
        if request.pk not in cache:
            cache[request.pk] = list(request.decisions.select_related("reviewer").order_by("created_at", "pk"))
        return cache[request.pk]

    @extend_schema_field(RequestPolicySerializer)
    def get_policy(self, request: ApprovalRequest) -> Any:
        snapshot = request.policy_snapshot
        return RequestPolicySerializer({"tier": snapshot.get("tier", request.tier), **snapshot}).data

    @extend_schema_field(RequestStageSerializer(many=True))
    def get_stages(self, request: ApprovalRequest) -> Any:
        this_round = {d.stage_index: d for d in self._decisions(request) if d.round == request.round}
        rows = []
        for index, stage in enumerate(request.stages):
            decision = this_round.get(index)
            if decision is not None:
                status = "decided"
            elif request.stage is not None and index == request.current_stage:
                status = "current"
            else:
                status = "waiting"
            rows.append(
                {
                    "index": index,
                    "name": stage.get("name", ""),
                    "role": stage.get("role", ""),
                    "sla_hours": stage.get("sla_hours", 0),
                    "status": status,
                    "decision": decision,
                }
            )
        return RequestStageSerializer(rows, many=True).data

    def _checks(self, request: ApprovalRequest) -> list[CheckRun]:
        """Every round's checks, read once for the current round's and the timeline."""
        cache: dict[int, list[CheckRun]] = self.context.setdefault("_checks", {})
        if request.pk not in cache:
            cache[request.pk] = selectors.request_checks_all(request)
        return cache[request.pk]

    @extend_schema_field(CheckRunSerializer(many=True))
    def get_checks(self, request: ApprovalRequest) -> Any:
        return CheckRunSerializer([c for c in self._checks(request) if c.round == request.round], many=True).data

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, request: ApprovalRequest) -> Any:
        return DecisionSerializer(self._decisions(request), many=True).data

    @extend_schema_field(TimelineItemSerializer(many=True))
    def get_timeline(self, request: ApprovalRequest) -> Any:
        timeline = selectors.request_timeline(
            request=request, checks=self._checks(request), decisions=self._decisions(request)
        )
        return TimelineItemSerializer(timeline, many=True).data

    @extend_schema_field(serializers.DictField(child=FieldChangeSerializer()))
    def get_changes_since_last_round(self, request: ApprovalRequest) -> dict[str, dict[str, Any]]:
        return approvals_decisions.resubmission_changes(request)

    @extend_schema_field(HintsSerializer(allow_null=True))
    def get_hints(self, request: ApprovalRequest) -> Any:
        from approvals.attestation import hints_panel

        panel = hints_panel(request, self.context["request"].user)
        return HintsSerializer(panel).data if panel is not None else None

    @extend_schema_field(RoundSerializer(many=True))
    def get_rounds(self, request: ApprovalRequest) -> Any:
        return RoundSerializer(
            [{"reason": "submitted", "changed_by": "", "changes": {}, **snap} for snap in request.round_snapshots],
            many=True,
        ).data

    def _refusal(self, request: ApprovalRequest) -> str | None:
        cache: dict[int, str | None] = self.context.setdefault("_refusals", {})
        if request.pk not in cache:
            cache[request.pk] = approvals_decisions.decision_refusal(self.context["request"].user, request)
        return cache[request.pk]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_can_decide(self, request: ApprovalRequest) -> bool:
        return self._refusal(request) is None

    @extend_schema_field(NULLABLE_STR)
    def get_why_not(self, request: ApprovalRequest) -> str | None:
        return self._refusal(request)


class RequestListQuerySerializer(serializers.Serializer):
    """Query-string filters of the request list; a bad value is a 400 naming the parameter."""

    state = NamedChoiceField(
        enum_name="ApprovalStateEnum",
        choices=ApprovalRequest.State.choices,
        required=False,
        help_text="Only requests in this state.",
    )
    kind = NamedChoiceField(
        enum_name="ApprovalKindEnum",
        choices=ApprovalRequest.Kind.choices,
        required=False,
        help_text="Only requests of this kind.",
    )
    tier = _tier_field(required=False, help_text="Only requests at this risk tier.")
    team = serializers.CharField(max_length=63, required=False, help_text="Only requests of this owning team (name).")
    mine = serializers.BooleanField(required=False, default=False, help_text="Only requests you submitted.")
    awaiting_me = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Your review queue: waiting at a stage your groups decide (or an attestation of a team you "
        "maintain), not your own, most urgent first.",
    )


# --- writing requests ---------------------------------------------------------------------------------------


class RequestSubmitSerializer(serializers.Serializer):
    """Exactly one subject: `agent`, `tool` or `grant`. For `tool_grant`, `agent` and `tool` (with `environment`
    and `capability_names`) request the grant first, or return the open one, and then submit it."""

    kind = NamedChoiceField(
        enum_name="ApprovalKindEnum",
        choices=ApprovalRequest.Kind.choices,
        help_text="agent_onboarding (agent), tool_onboarding (tool) or tool_grant (grant, or agent and tool).",
    )
    agent = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Agent.objects.select_related("owner"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Agent name.",
    )
    tool = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Tool.objects.select_related("owner"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Tool name.",
    )
    grant = serializers.PrimaryKeyRelatedField(
        queryset=ToolGrant.objects.select_related("agent", "tool", "agent__owner", "tool__owner"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Id of an existing tool grant (tool_grant requests).",
    )
    environment = serializers.CharField(
        max_length=63,
        required=False,
        default="production",
        help_text="tool_grant with agent and tool: environment of the grant (DNS label).",
    )
    capability_names = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=list,
        help_text="tool_grant with agent and tool: capabilities to grant; empty asks for all of them.",
    )
    justification = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False, help_text="Why; at most 10,000 characters."
    )
    attest = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Must be false: the requester cannot attest their own request; another maintainer of the owning "
        "team attests it at the attestation stage (`POST .../attest/`).",
    )


class DecideSerializer(serializers.Serializer):
    outcome = NamedChoiceField(
        enum_name="DecisionOutcomeEnum",
        choices=Decision.Outcome.choices,
        help_text="approve, reject or request_changes.",
    )
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="Required to reject or request changes; at most 10,000 characters.",
    )
    stage_index = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="The stage you saw (`current_stage`); when it moved on meanwhile the answer is 409.",
    )
    facts_fingerprint = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=64,
        help_text=(
            "The `facts_fingerprint` of the request you reviewed; required to approve. When the subject's facts "
            "changed since (a new round started), the answer is 409 naming what changed."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("outcome") == Decision.Outcome.APPROVE and not attrs.get("facts_fingerprint"):
            raise serializers.ValidationError(
                {"facts_fingerprint": "is required to approve: send the request's `facts_fingerprint` you reviewed."}
            )
        return attrs


class ResubmitSerializer(serializers.Serializer):
    justification = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=services.MAX_COMMENT,
        trim_whitespace=False,
        help_text="New justification; left out keeps the old one. At most 10,000 characters.",
    )
    attest = serializers.BooleanField(
        required=False,
        default=False,
        help_text="You attest the descriptor is true; refused for the requester (a maintainer of the owning team "
        "who is not the requester attests).",
    )


# --- policies -----------------------------------------------------------------------------------------------


class PolicyStageSerializer(serializers.Serializer):
    order = serializers.IntegerField(read_only=True, help_text="0-based position; stages are decided in order.")
    name = serializers.CharField(max_length=STAGE_NAME_MAX, help_text="Stage name, e.g. `Security review`.")
    role = serializers.CharField(
        max_length=STAGE_ROLE_MAX,
        help_text="Group whose members decide it, e.g. `security-reviewer`.",
    )
    sla_hours = serializers.IntegerField(help_text="Hours before reminders and escalation (1-720).")


class PolicySerializer(serializers.Serializer):
    tier = _tier_field(read_only=True, help_text="The tier this policy governs.")
    auto_approve = serializers.BooleanField(
        required=False, help_text="Approve after passing checks without people (only when there are no stages)."
    )
    requires_attestation = serializers.BooleanField(
        required=False, help_text="The owner attests the descriptor is true before an automatic approval."
    )
    validity_days = serializers.IntegerField(required=False, help_text="How long an approval lasts (1-730 days).")
    exclude_owning_team = serializers.BooleanField(required=False, help_text="Nobody from the owning team may approve.")
    description = serializers.CharField(required=False, allow_blank=True, help_text="The policy in one sentence.")
    stages = PolicyStageSerializer(
        many=True, required=False, help_text="Review stages in order; given, they replace the current stages."
    )
    updated_at = serializers.DateTimeField(read_only=True, help_text="Last change.")
