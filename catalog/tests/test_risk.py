"""Unit tests for the pure risk rubric. No database: every test works on plain dataclasses."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from catalog import risk
from catalog.risk import (
    AgentFacts,
    Assessment,
    CapabilityFacts,
    Factor,
    Tier,
    ToolFacts,
    assess_agent,
    assess_grant,
    assess_tool,
    tier_for_score,
)

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "risk-tiers.md"

READ = CapabilityFacts("read", read_only=True, destructive=False, open_world=False)
ADD = CapabilityFacts("add", read_only=False, destructive=False, open_world=False)
DELETE = CapabilityFacts("delete", read_only=False, destructive=True, open_world=False)


def make_tool(
    *capabilities: CapabilityFacts,
    data_class: str | None = "public",
    reach: str | None = "closed",
    credential_scope: str | None = "none",
    annotations_trusted: bool = True,
) -> ToolFacts:
    """A tool that scores 0 on every tool factor unless told otherwise."""
    return ToolFacts(
        data_class=data_class,
        reach=reach,
        credential_scope=credential_scope,
        capabilities=capabilities or (READ,),
        annotations_trusted=annotations_trusted,
    )


def make_agent(
    autonomy_level: int | None = 1,
    human_in_loop: str | None = "per_action",
    data_class: str | None = "public",
) -> AgentFacts:
    """An agent that scores 0 on every agent factor unless told otherwise."""
    return AgentFacts(autonomy_level=autonomy_level, human_in_loop=human_in_loop, data_class=data_class)


def points(assessment: Assessment) -> dict[str, int]:
    return {factor.code: factor.points for factor in assessment.factors}


def factor(assessment: Assessment, code: str) -> Factor:
    return next(factor for factor in assessment.factors if factor.code == code)


# --- every factor value -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_class", "expected_points", "expected_label"),
    [
        ("public", 0, "public data"),
        ("internal", 1, "internal data"),
        ("confidential", 2, "confidential data"),
        ("restricted", 3, "restricted data"),
        (None, 3, "unknown data class (counted as restricted)"),
    ],
)
def test_data_class_points(data_class: str | None, expected_points: int, expected_label: str) -> None:
    assessment = assess_grant(make_agent(), make_tool(data_class=data_class))
    assert factor(assessment, "D") == Factor("D", expected_points, expected_label)


@pytest.mark.parametrize(
    ("capabilities", "expected_points", "expected_label"),
    [
        ((READ,), 0, "read-only"),
        ((READ, ADD), 1, "additive writes"),
        ((READ, ADD, DELETE), 3, "destructive writes"),
        # Absent hints take MCP's defaults: not read-only, destructive.
        ((CapabilityFacts("bare", open_world=False),), 3, "destructive writes"),
        ((CapabilityFacts("writes", read_only=False, open_world=False),), 3, "destructive writes"),
        # destructiveHint is meaningless on a read-only capability.
        ((CapabilityFacts("r", read_only=True, destructive=True, open_world=False),), 0, "read-only"),
        ((CapabilityFacts("a", destructive=False, open_world=False),), 1, "additive writes"),
    ],
)
def test_write_points_with_trusted_annotations(
    capabilities: tuple[CapabilityFacts, ...], expected_points: int, expected_label: str
) -> None:
    assessment = assess_grant(make_agent(), make_tool(*capabilities))
    assert factor(assessment, "W") == Factor("W", expected_points, expected_label)


@pytest.mark.parametrize(
    ("reach", "capabilities", "expected_points", "expected_label"),
    [
        ("closed", (READ,), 0, "closed reach"),
        ("allowlisted", (READ,), 1, "allowlisted hosts"),
        ("open_world", (READ,), 2, "open world"),
        (None, (READ,), 2, "unknown reach (counted as open world)"),
        (
            "closed",
            (READ, CapabilityFacts("fetch", read_only=True, open_world=True)),
            2,
            "open-world capability",
        ),
        # openWorldHint defaults to true.
        ("allowlisted", (CapabilityFacts("fetch", read_only=True),), 2, "open-world capability"),
    ],
)
def test_reach_points(
    reach: str | None, capabilities: tuple[CapabilityFacts, ...], expected_points: int, expected_label: str
) -> None:
    assessment = assess_grant(make_agent(), make_tool(*capabilities, reach=reach))
    assert factor(assessment, "E") == Factor("E", expected_points, expected_label)


@pytest.mark.parametrize(
    ("autonomy_level", "expected_points", "expected_label"),
    [
        (1, 0, "autonomy level 1"),
        (2, 0, "autonomy level 2"),
        (3, 1, "autonomy level 3"),
        (4, 2, "autonomy level 4"),
        (5, 3, "autonomy level 5"),
        (None, 3, "unknown autonomy level (counted as level 5)"),
    ],
)
def test_autonomy_points(autonomy_level: int | None, expected_points: int, expected_label: str) -> None:
    assessment = assess_grant(make_agent(autonomy_level=autonomy_level), make_tool())
    assert factor(assessment, "A") == Factor("A", expected_points, expected_label)


@pytest.mark.parametrize(
    ("human_in_loop", "expected_points", "expected_label"),
    [
        ("per_action", 0, "per-action approval"),
        ("sampled", 1, "sampled or after-the-fact review"),
        ("none", 2, "no human in the loop"),
        (None, 2, "unknown human in the loop (counted as none)"),
    ],
)
def test_human_in_loop_points_when_the_grant_writes(
    human_in_loop: str | None, expected_points: int, expected_label: str
) -> None:
    assessment = assess_grant(make_agent(human_in_loop=human_in_loop), make_tool(ADD))
    assert factor(assessment, "H") == Factor("H", expected_points, expected_label)


@pytest.mark.parametrize("human_in_loop", ["per_action", "sampled", "none", None])
def test_it_scores_no_human_points_without_writes(human_in_loop: str | None) -> None:
    assessment = assess_grant(make_agent(human_in_loop=human_in_loop), make_tool(READ))
    assert factor(assessment, "H") == Factor("H", 0, "no writes")


@pytest.mark.parametrize(
    ("credential_scope", "expected_points", "expected_label"),
    [
        ("none", 0, "no credentials"),
        ("delegated", 1, "delegated short-lived credentials"),
        ("shared", 2, "shared or broad credentials"),
        ("admin", 3, "admin credentials"),
        (None, 3, "unknown credential scope (counted as admin)"),
    ],
)
def test_credential_points(credential_scope: str | None, expected_points: int, expected_label: str) -> None:
    assessment = assess_grant(make_agent(), make_tool(credential_scope=credential_scope))
    assert factor(assessment, "C") == Factor("C", expected_points, expected_label)


def test_it_scores_every_unknown_at_its_maximum() -> None:
    tool = ToolFacts(data_class=None, reach=None, credential_scope=None, capabilities=())
    agent = AgentFacts(autonomy_level=None, human_in_loop=None, data_class=None)
    assessment = assess_grant(agent, tool)
    assert points(assessment) == dict(risk.UNKNOWN_POINTS)
    assert assessment.score == risk.MAX_SCORE == 16
    assert assessment.tier is Tier.CRITICAL


def test_it_counts_an_empty_capability_list_as_unknown() -> None:
    no_capabilities = ToolFacts("public", "closed", "none", capabilities=(), annotations_trusted=True)
    assessment = assess_tool(no_capabilities)
    assert factor(assessment, "W") == Factor("W", 3, "unknown capabilities (counted as destructive writes)")
    assert factor(assessment, "E") == Factor("E", 2, "unknown capabilities (counted as open world)")


# --- MCP annotation trust ---------------------------------------------------------------------------


def test_it_ignores_untrusted_read_only_hints() -> None:
    claimed_read_only = make_tool(READ, annotations_trusted=False)
    assessment = assess_grant(make_agent(), claimed_read_only)
    assert factor(assessment, "W") == Factor("W", 3, "unverified annotations (counted as destructive writes)")
    assert factor(assessment, "E") == Factor("E", 2, "unverified annotations (counted as open world)")


def test_it_trusts_the_same_hints_once_attested() -> None:
    assessment = assess_grant(make_agent(), make_tool(READ, annotations_trusted=True))
    assert (factor(assessment, "W").points, factor(assessment, "E").points) == (0, 0)


def test_it_labels_untrusted_hints_that_already_claim_the_worst_plainly() -> None:
    open_destructive = CapabilityFacts("delete", read_only=False, destructive=True, open_world=True)
    assessment = assess_grant(make_agent(), make_tool(open_destructive, annotations_trusted=False))
    assert factor(assessment, "W").label == "destructive writes"
    assert factor(assessment, "E").label == "open-world capability"


@pytest.mark.parametrize(
    ("capability", "trusted", "expected_class", "expected_open_world"),
    [
        (READ, True, "read_only", False),
        (ADD, True, "additive", False),
        (DELETE, True, "destructive", False),
        (CapabilityFacts("bare"), True, "destructive", True),
        (READ, False, "destructive", True),
        (ADD, False, "destructive", True),
    ],
)
def test_capability_classification(
    capability: CapabilityFacts, trusted: bool, expected_class: str, expected_open_world: bool
) -> None:
    assert risk.capability_write_class(capability, trusted) == expected_class
    assert risk.capability_is_open_world(capability, trusted) is expected_open_world


# --- tiers and bands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, Tier.LOW),
        (4, Tier.LOW),
        (5, Tier.MEDIUM),
        (8, Tier.MEDIUM),
        (9, Tier.HIGH),
        (12, Tier.HIGH),
        (13, Tier.CRITICAL),
        (16, Tier.CRITICAL),
    ],
)
def test_tier_for_score_band_edges(score: int, expected: Tier) -> None:
    assert tier_for_score(score) is expected


@pytest.mark.parametrize("score", [-1, 17])
def test_tier_for_score_rejects_scores_outside_the_scale(score: int) -> None:
    with pytest.raises(ValueError, match="score must be between 0 and 16"):
        tier_for_score(score)


def test_it_bands_cover_the_whole_scale_without_gaps() -> None:
    covered = [score for _, lowest, highest in risk.TIER_BANDS for score in range(lowest, highest + 1)]
    assert covered == list(range(risk.MAX_SCORE + 1))


def test_tier_rank_orders_tiers_by_severity() -> None:
    assert [tier.rank for tier in (Tier.LOW, Tier.MEDIUM, Tier.HIGH, Tier.CRITICAL)] == [0, 1, 2, 3]
    assert Tier.CRITICAL.rank > Tier.LOW.rank  # "critical" < "low" as strings, hence rank


@pytest.mark.parametrize(
    ("agent", "tool", "expected_score", "expected_tier"),
    [
        # 4 / 5: internal data + allowlisted + autonomy 4, then one more point of data.
        (make_agent(autonomy_level=4), make_tool(data_class="internal", reach="allowlisted"), 4, Tier.LOW),
        (
            make_agent(autonomy_level=4),
            make_tool(data_class="confidential", reach="allowlisted"),
            5,
            Tier.MEDIUM,
        ),
        # 8 / 9: no floor applies (closed reach, per-action approval, shared credentials).
        (
            make_agent(autonomy_level=5),
            make_tool(ADD, data_class="restricted", credential_scope="shared"),
            9,
            Tier.HIGH,
        ),
        (
            make_agent(autonomy_level=4),
            make_tool(ADD, data_class="restricted", credential_scope="shared"),
            8,
            Tier.MEDIUM,
        ),
    ],
)
def test_it_bands_real_assessments_at_the_edges(
    agent: AgentFacts, tool: ToolFacts, expected_score: int, expected_tier: Tier
) -> None:
    assessment = assess_grant(agent, tool)
    assert (assessment.score, assessment.tier, assessment.floors) == (expected_score, expected_tier, ())


def test_it_bands_12_as_high_and_13_as_critical_through_a_grant() -> None:
    tool = make_tool(DELETE, data_class="confidential", reach="allowlisted", credential_scope="shared")
    twelve = assess_grant(make_agent(autonomy_level=5, human_in_loop="sampled"), tool)
    thirteen = assess_grant(make_agent(autonomy_level=5, human_in_loop="sampled"), replace(tool, reach=None))
    assert (twelve.score, twelve.tier) == (12, Tier.HIGH)
    assert (thirteen.score, thirteen.tier) == (13, Tier.CRITICAL)


# --- floors -----------------------------------------------------------------------------------------

FLOOR_1 = risk.FLOORS[0].describe()
FLOOR_2 = risk.FLOORS[1].describe()
FLOOR_3 = risk.FLOORS[2].describe()
FLOOR_4 = risk.FLOORS[3].describe()


@pytest.mark.parametrize(
    ("agent", "tool", "expected_score", "expected_tier", "expected_floors"),
    [
        # Floor 1: D2 + E2 + W1 = 5 would be medium.
        (
            make_agent(),
            make_tool(ADD, data_class="confidential", reach="open_world"),
            5,
            Tier.HIGH,
            (FLOOR_1,),
        ),
        (make_agent(), make_tool(ADD, data_class="internal", reach="open_world"), 4, Tier.LOW, ()),
        (make_agent(), make_tool(ADD, data_class="confidential", reach="allowlisted"), 4, Tier.LOW, ()),
        (make_agent(), make_tool(READ, data_class="confidential", reach="open_world"), 4, Tier.LOW, ()),
        # Floor 2: admin credentials alone (3) would be low.
        (make_agent(), make_tool(credential_scope="admin"), 3, Tier.HIGH, (FLOOR_2,)),
        (make_agent(), make_tool(credential_scope="shared"), 2, Tier.LOW, ()),
        # Floor 3: W3 + A2 + H2 = 7 would be medium.
        (make_agent(autonomy_level=4, human_in_loop="none"), make_tool(DELETE), 7, Tier.CRITICAL, (FLOOR_3,)),
        (make_agent(autonomy_level=3, human_in_loop="none"), make_tool(DELETE), 6, Tier.MEDIUM, ()),
        (make_agent(autonomy_level=4, human_in_loop="sampled"), make_tool(DELETE), 6, Tier.MEDIUM, ()),
        (make_agent(autonomy_level=4, human_in_loop="none"), make_tool(ADD), 5, Tier.MEDIUM, ()),
        # Floor 4: W3 + D3 + H1 = 7 would be medium.
        (
            make_agent(human_in_loop="sampled"),
            make_tool(DELETE, data_class="restricted"),
            7,
            Tier.CRITICAL,
            (FLOOR_4,),
        ),
        (
            make_agent(human_in_loop="per_action"),
            make_tool(DELETE, data_class="restricted"),
            6,
            Tier.MEDIUM,
            (),
        ),
        (
            make_agent(human_in_loop="sampled"),
            make_tool(DELETE, data_class="confidential"),
            6,
            Tier.MEDIUM,
            (),
        ),
        (make_agent(human_in_loop="sampled"), make_tool(ADD, data_class="restricted"), 5, Tier.MEDIUM, ()),
    ],
)
def test_floors_apply_exactly_when_their_conditions_hold(
    agent: AgentFacts,
    tool: ToolFacts,
    expected_score: int,
    expected_tier: Tier,
    expected_floors: tuple[str, ...],
) -> None:
    assessment = assess_grant(agent, tool)
    assert (assessment.score, assessment.tier, assessment.floors) == (
        expected_score,
        expected_tier,
        expected_floors,
    )


def test_it_records_every_floor_that_holds_even_without_raising_the_tier() -> None:
    tool = make_tool(DELETE, data_class="restricted", reach="open_world", credential_scope="admin")
    assessment = assess_grant(make_agent(autonomy_level=5, human_in_loop="none"), tool)
    assert assessment.score == 16
    assert assessment.floors == (FLOOR_1, FLOOR_2, FLOOR_3, FLOOR_4)


def test_a_floor_never_lowers_the_tier() -> None:
    tool = make_tool(ADD, data_class="restricted", reach="open_world", credential_scope="admin")
    assessment = assess_grant(make_agent(autonomy_level=5, human_in_loop="sampled"), tool)
    assert (assessment.score, assessment.tier) == (13, Tier.CRITICAL)
    assert assessment.floors == (FLOOR_1, FLOOR_2)


# --- subjects ---------------------------------------------------------------------------------------


def test_tool_baseline_assumes_the_worst_agent() -> None:
    assessment = assess_tool(make_tool(ADD))
    assert factor(assessment, "A") == Factor("A", 3, "any agent (counted as autonomy level 5)")
    assert factor(assessment, "H") == Factor("H", 2, "any agent (counted as no human in the loop)")
    assert (assessment.score, assessment.tier) == (6, Tier.MEDIUM)


def test_tool_baseline_of_a_read_only_tool_needs_no_human() -> None:
    assessment = assess_tool(make_tool(READ))
    assert factor(assessment, "H") == Factor("H", 0, "no writes")
    assert (assessment.score, assessment.tier) == (3, Tier.LOW)


def test_it_makes_any_destructive_tool_baseline_critical() -> None:
    assessment = assess_tool(make_tool(READ, annotations_trusted=False))
    assert assessment.tier is Tier.CRITICAL
    assert FLOOR_3 in assessment.floors


def test_grant_narrowing_scores_only_the_granted_capabilities() -> None:
    tool = make_tool(READ, ADD, DELETE)
    agent = make_agent()
    assert factor(assess_grant(agent, tool), "W").points == 3
    assert factor(assess_grant(agent, tool, capability_names=["read", "add"]), "W").points == 1
    assert factor(assess_grant(agent, tool, capability_names={"read"}), "W").points == 0


def test_grant_narrowing_drops_open_world_capabilities_not_granted() -> None:
    fetch = CapabilityFacts("fetch", read_only=True, open_world=True)
    tool = make_tool(READ, fetch, reach="allowlisted")
    assert factor(assess_grant(make_agent(), tool), "E").points == 2
    assert factor(assess_grant(make_agent(), tool, capability_names=("read",)), "E").points == 1


def test_it_counts_a_grant_of_no_capabilities_as_unknown() -> None:
    assessment = assess_grant(make_agent(), make_tool(READ), capability_names=())
    assert (factor(assessment, "W").points, factor(assessment, "E").points) == (3, 2)


def test_grant_takes_data_reach_and_credentials_from_the_tool_not_the_agent() -> None:
    tool = make_tool(data_class="internal", reach="allowlisted", credential_scope="delegated")
    assessment = assess_grant(make_agent(data_class="restricted"), tool)
    assert points(assessment) == {"D": 1, "W": 0, "E": 1, "A": 0, "H": 0, "C": 1}


@pytest.mark.parametrize(
    ("tool_scope", "override", "expected_points", "expected_label"),
    [
        ("admin", "delegated", 1, "delegated short-lived credentials (grant override)"),
        ("none", "admin", 3, "admin credentials (grant override)"),
        (None, "shared", 2, "shared or broad credentials (grant override)"),
        ("shared", None, 2, "shared or broad credentials"),
    ],
)
def test_grant_credential_override(
    tool_scope: str | None, override: str | None, expected_points: int, expected_label: str
) -> None:
    assessment = assess_grant(make_agent(), make_tool(credential_scope=tool_scope), credential_scope=override)
    assert factor(assessment, "C") == Factor("C", expected_points, expected_label)


def test_agent_own_assessment_has_no_side_effects() -> None:
    assessment = assess_agent(AgentFacts(autonomy_level=5, human_in_loop=None, data_class="restricted"))
    assert points(assessment) == {"D": 3, "W": 0, "E": 0, "A": 3, "H": 0, "C": 0}
    assert (assessment.score, assessment.tier, assessment.driver) == (6, Tier.MEDIUM, "")


def test_agent_takes_its_riskiest_grant_and_names_it() -> None:
    agent = make_agent(autonomy_level=4, human_in_loop="sampled", data_class="internal")
    risky = assess_grant(agent, make_tool(DELETE, data_class="restricted"))
    mild = assess_grant(agent, make_tool(ADD, data_class="internal"))
    assessment = assess_agent(agent, [("docs-search", mild), ("payments", risky)])
    assert assessment.tier is Tier.CRITICAL
    assert assessment.factors == risky.factors
    assert assessment.floors == risky.floors
    assert assessment.driver == "grant to tool payments"


def test_agent_keeps_its_own_assessment_when_no_grant_is_riskier() -> None:
    agent = make_agent(autonomy_level=5, data_class="restricted")
    tame = assess_grant(agent, make_tool(READ))
    assessment = assess_agent(agent, [("docs-search", tame)])
    assert assessment == assess_agent(agent)
    assert assessment.driver == ""


def test_agent_compares_grants_by_tier_before_score() -> None:
    agent = make_agent()
    floored_high = assess_grant(agent, make_tool(credential_scope="admin"))  # score 3, high
    plain_medium = assess_grant(make_agent(autonomy_level=5), make_tool(data_class="restricted"))  # 6, medium
    assessment = assess_agent(agent, [("admin-tool", floored_high), ("data-tool", plain_medium)])
    assert assessment.driver == "grant to tool admin-tool"


def test_agent_breaks_ties_between_grants_by_tool_name() -> None:
    agent = make_agent()
    same = assess_grant(agent, make_tool(ADD, data_class="confidential"))
    forwards = assess_agent(agent, [("alpha", same), ("beta", same)])
    backwards = assess_agent(agent, [("beta", same), ("alpha", same)])
    assert forwards == backwards
    assert forwards.driver == "grant to tool alpha"


# --- explain() and to_dict() ------------------------------------------------------------------------


def test_explain_lists_contributing_factors_highest_first_then_floors() -> None:
    tool = make_tool(DELETE, data_class="restricted", reach="allowlisted", credential_scope="delegated")
    assessment = assess_grant(make_agent(autonomy_level=4, human_in_loop="sampled"), tool)
    assert assessment.explain() == (
        "critical: restricted data (3), destructive writes (3), autonomy level 4 (2), "
        "allowlisted hosts (1), sampled or after-the-fact review (1), "
        "delegated short-lived credentials (1); "
        "floor: destructive writes on restricted data without per-action approval (critical)"
    )


def test_explain_says_when_nothing_contributes() -> None:
    assert assess_grant(make_agent(), make_tool()).explain() == "low: no risk factors"


def test_explain_names_the_driving_grant() -> None:
    agent = make_agent()
    grant = assess_grant(agent, make_tool(credential_scope="admin"))
    assert assess_agent(agent, [("vault", grant)]).explain() == (
        "high: admin credentials (3); "
        "floor: admin or organisation-wide long-lived credentials (at least high); "
        "driven by grant to tool vault"
    )


def test_to_dict_is_json_serialisable_and_complete() -> None:
    agent = make_agent()
    grant = assess_grant(agent, make_tool(credential_scope="admin"))
    data = json.loads(json.dumps(assess_agent(agent, [("vault", grant)]).to_dict()))
    assert data == {
        "tier": "high",
        "score": 3,
        "rubric_version": "v1",
        "factors": [
            {"code": "D", "points": 0, "label": "public data"},
            {"code": "W", "points": 0, "label": "read-only"},
            {"code": "E", "points": 0, "label": "closed reach"},
            {"code": "A", "points": 0, "label": "autonomy level 1"},
            {"code": "H", "points": 0, "label": "no writes"},
            {"code": "C", "points": 3, "label": "admin credentials"},
        ],
        "floors": ["admin or organisation-wide long-lived credentials (at least high)"],
        "driver": "grant to tool vault",
        "explanation": (
            "high: admin credentials (3); floor: admin or organisation-wide long-lived credentials "
            "(at least high); driven by grant to tool vault"
        ),
    }


# --- invalid input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: make_tool(data_class="secret"), "data_class"),
        (lambda: make_tool(reach="internet"), "reach"),
        (lambda: make_tool(credential_scope="root"), "credential_scope"),
        (lambda: make_agent(autonomy_level=7), "autonomy_level"),
        (lambda: make_agent(autonomy_level=0), "autonomy_level"),
        (lambda: make_agent(autonomy_level=True), "autonomy_level"),
        (lambda: make_agent(human_in_loop="always"), "human_in_loop"),
        (lambda: make_agent(data_class="Public"), "data_class"),
        (lambda: CapabilityFacts("x", read_only="yes"), "read_only"),  # type: ignore[arg-type]
        (lambda: CapabilityFacts(""), "name"),
        (lambda: assess_grant(make_agent(), make_tool(), credential_scope="god"), "credential_scope"),
        (lambda: assess_grant(make_agent(), make_tool(READ), capability_names=["nope"]), "capability_names"),
        (lambda: assess_grant(make_agent(), make_tool(READ), capability_names="read"), "capability_names"),
    ],
)
def test_it_rejects_invalid_values_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        build()


def test_it_lists_accepted_values_in_the_error() -> None:
    with pytest.raises(ValueError, match="public, internal, confidential, restricted") as error:
        make_tool(data_class="secret")
    assert "'secret'" in str(error.value)
    with pytest.raises(ValueError, match="1, 2, 3, 4, 5"):
        make_agent(autonomy_level=7)


# --- determinism ------------------------------------------------------------------------------------


def test_it_is_deterministic() -> None:
    agent = make_agent(autonomy_level=4, human_in_loop="sampled", data_class="internal")
    tool = make_tool(READ, ADD, DELETE, data_class="confidential", reach="allowlisted", annotations_trusted=False)
    first = assess_grant(agent, tool, capability_names=["read", "add"])
    second = assess_grant(agent, tool, capability_names=["add", "read"])
    assert first == second
    assert first.to_dict() == second.to_dict()
    assert json.dumps(first.to_dict()) == json.dumps(second.to_dict())


def test_it_accepts_capabilities_as_a_list_and_stores_a_tuple() -> None:
    tool = ToolFacts("public", "closed", "none", [READ, ADD])  # type: ignore[arg-type]
    assert tool.capabilities == (READ, ADD)
    assert hash(tool) == hash(ToolFacts("public", "closed", "none", (READ, ADD)))


# --- docs/risk-tiers.md agrees with the code --------------------------------------------------------


def doc_text() -> str:
    return DOC_PATH.read_text(encoding="utf-8")


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table in the text, as rows of stripped cells (header first, separator dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def tables_with_header(header: list[str]) -> list[list[str]]:
    return [row for table in markdown_tables(doc_text()) if table[0] == header for row in table[1:]]


def test_doc_factor_tables_match_the_points_constants() -> None:
    documented: dict[str, dict[str, int]] = {}
    documented_unknown: dict[str, int] = {}
    for code, value, points_text in tables_with_header(["code", "value", "points"]):
        if value == "unknown":
            documented_unknown[code] = int(points_text)
        else:
            documented.setdefault(code, {})[value] = int(points_text)
    expected = {code: {str(value): pts for value, pts in table.items()} for code, table in risk.POINTS_BY_CODE.items()}
    assert documented == expected
    assert documented_unknown == dict(risk.UNKNOWN_POINTS)


def test_doc_value_order_matches_the_accepted_values() -> None:
    documented: dict[str, list[str]] = {}
    for code, value, _ in tables_with_header(["code", "value", "points"]):
        if value != "unknown":
            documented.setdefault(code, []).append(value)
    assert documented["D"] == list(risk.DATA_CLASSES)
    assert documented["W"] == list(risk.WRITE_CLASSES)
    assert documented["E"] == list(risk.REACH)
    assert documented["A"] == [str(level) for level in risk.AUTONOMY_LEVELS]
    assert documented["H"] == list(risk.HUMAN_IN_LOOP)
    assert documented["C"] == list(risk.CREDENTIAL_SCOPES)


def test_doc_tier_bands_match_the_code() -> None:
    rows = tables_with_header(["tier", "min score", "max score"])
    documented = [(Tier(tier), int(lowest), int(highest)) for tier, lowest, highest in rows]
    assert documented == list(risk.TIER_BANDS)


def test_doc_floors_match_the_code() -> None:
    pattern = re.compile(r"^(\d+)\. \*\*(\w+)\*\* when `([^`]+)`: (.+)$", re.MULTILINE)
    documented = [
        (int(number), Tier(minimum), conditions, reason.strip())
        for number, minimum, conditions, reason in pattern.findall(doc_text())
    ]
    expected = [
        (number, rule.minimum, " and ".join(str(condition) for condition in rule.conditions), rule.reason)
        for number, rule in enumerate(risk.FLOORS, start=1)
    ]
    assert documented == expected


def test_doc_states_the_rubric_version() -> None:
    assert re.findall(r"^Rubric version: `([^`]+)`$", doc_text(), re.MULTILINE) == [risk.RUBRIC_VERSION]


def test_doc_worked_examples_hold() -> None:
    docs_search = ToolFacts(
        data_class="internal",
        reach="allowlisted",
        credential_scope="delegated",
        capabilities=(CapabilityFacts("search_docs", read_only=True, open_world=False),),
        annotations_trusted=True,
    )
    github = ToolFacts(
        data_class="confidential",
        reach="allowlisted",
        credential_scope="shared",
        capabilities=(
            CapabilityFacts("list_issues", read_only=True, open_world=False),
            CapabilityFacts("create_issue", read_only=False, destructive=False, open_world=False),
            CapabilityFacts("delete_repo", read_only=False, destructive=True, open_world=False),
        ),
    )
    triage_bot = AgentFacts(autonomy_level=4, human_in_loop="sampled", data_class="internal")

    baseline = assess_tool(docs_search)
    assert (baseline.score, baseline.tier, baseline.floors) == (6, Tier.MEDIUM, ())

    full_grant = assess_grant(triage_bot, github)
    assert points(full_grant) == {"D": 2, "W": 3, "E": 2, "A": 2, "H": 1, "C": 2}
    assert (full_grant.score, full_grant.tier, full_grant.floors) == (12, Tier.HIGH, (FLOOR_1,))
    assert factor(full_grant, "E").label == "unverified annotations (counted as open world)"

    narrowed = assess_grant(triage_bot, replace(github, annotations_trusted=True), capability_names=["list_issues"])
    assert (narrowed.score, narrowed.tier, narrowed.floors) == (7, Tier.MEDIUM, ())

    docs_grant = assess_grant(triage_bot, docs_search)
    assert (docs_grant.score, docs_grant.tier) == (5, Tier.MEDIUM)
    own = assess_agent(triage_bot)
    assert (own.score, own.tier) == (3, Tier.LOW)
    agent = assess_agent(triage_bot, [("docs-search", docs_grant), ("github-mcp", full_grant)])
    assert (agent.score, agent.tier, agent.driver) == (12, Tier.HIGH, "grant to tool github-mcp")
