"""Risk rubric v1 for agents, tools and grants.

Pure module: stdlib only, no Django or ORM, so it can be unit-tested without a database
and reused by the API, the UI and background jobs alike.

Every fact that is unknown (None) counts as its worst value: the rubric fails closed.
docs/risk-tiers.md documents the rubric; catalog/tests/test_risk.py checks that the doc's
tables and the constants below agree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

RUBRIC_VERSION: Final = "v1"


class Tier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for critical; use this, not string order, to compare tiers."""
        return _TIER_RANKS[self]


_TIER_RANKS: Final[dict[Tier, int]] = {tier: index for index, tier in enumerate(Tier)}

DATA_CLASSES: Final = ("public", "internal", "confidential", "restricted")
REACH: Final = ("closed", "allowlisted", "open_world")
HUMAN_IN_LOOP: Final = ("per_action", "sampled", "none")
CREDENTIAL_SCOPES: Final = ("none", "delegated", "shared", "admin")
AUTONOMY_LEVELS: Final = (1, 2, 3, 4, 5)
WRITE_CLASSES: Final = ("read_only", "additive", "destructive")

# Points tables, one per factor code. docs/risk-tiers.md mirrors them row for row.
DATA_POINTS: Final[Mapping[str, int]] = {"public": 0, "internal": 1, "confidential": 2, "restricted": 3}
WRITE_POINTS: Final[Mapping[str, int]] = {"read_only": 0, "additive": 1, "destructive": 3}
REACH_POINTS: Final[Mapping[str, int]] = {"closed": 0, "allowlisted": 1, "open_world": 2}
AUTONOMY_POINTS: Final[Mapping[int, int]] = {1: 0, 2: 0, 3: 1, 4: 2, 5: 3}
HUMAN_POINTS: Final[Mapping[str, int]] = {"per_action": 0, "sampled": 1, "none": 2}
CREDENTIAL_POINTS: Final[Mapping[str, int]] = {"none": 0, "delegated": 1, "shared": 2, "admin": 3}

FACTOR_CODES: Final = ("D", "W", "E", "A", "H", "C")
POINTS_BY_CODE: Final[Mapping[str, Mapping[Any, int]]] = {
    "D": DATA_POINTS,
    "W": WRITE_POINTS,
    "E": REACH_POINTS,
    "A": AUTONOMY_POINTS,
    "H": HUMAN_POINTS,
    "C": CREDENTIAL_POINTS,
}
# Unknown facts score the maximum of their table (fail closed).
UNKNOWN_POINTS: Final[Mapping[str, int]] = {code: max(table.values()) for code, table in POINTS_BY_CODE.items()}
MAX_SCORE: Final = sum(UNKNOWN_POINTS.values())

# (tier, lowest score, highest score), inclusive, contiguous from 0 to MAX_SCORE.
TIER_BANDS: Final[tuple[tuple[Tier, int, int], ...]] = (
    (Tier.LOW, 0, 4),
    (Tier.MEDIUM, 5, 8),
    (Tier.HIGH, 9, 12),
    (Tier.CRITICAL, 13, 16),
)

_DATA_LABELS: Final = {
    "public": "public data",
    "internal": "internal data",
    "confidential": "confidential data",
    "restricted": "restricted data",
}
_WRITE_LABELS: Final = {
    "read_only": "read-only",
    "additive": "additive writes",
    "destructive": "destructive writes",
}
_REACH_LABELS: Final = {
    "closed": "closed reach",
    "allowlisted": "allowlisted hosts",
    "open_world": "open world",
}
_HUMAN_LABELS: Final = {
    "per_action": "per-action approval",
    "sampled": "sampled or after-the-fact review",
    "none": "no human in the loop",
}
_CREDENTIAL_LABELS: Final = {
    "none": "no credentials",
    "delegated": "delegated short-lived credentials",
    "shared": "shared or broad credentials",
    "admin": "admin credentials",
}


# --- facts -------------------------------------------------------------------------------------------


def _invalid(field: str, value: object, accepted: Iterable[object], none_allowed: bool = True) -> ValueError:
    choices = ", ".join(str(choice) for choice in accepted)
    unknown = " (or None for unknown)" if none_allowed else ""
    return ValueError(f"{field} must be one of {choices}{unknown}; got {value!r}")


def _check_choice(field: str, value: object, accepted: Collection[object]) -> None:
    # bool is an int subclass: True must not pass as autonomy level 1.
    if value is not None and (isinstance(value, bool) or value not in accepted):
        raise _invalid(field, value, accepted)


def _check_optional_bool(field: str, value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise _invalid(field, value, (True, False))


@dataclass(frozen=True)
class CapabilityFacts:
    """One callable capability of a tool (an MCP tool, an API operation) and its annotations."""

    name: str
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string; got {self.name!r}")
        for field in ("read_only", "destructive", "idempotent", "open_world"):
            _check_optional_bool(field, getattr(self, field))


@dataclass(frozen=True)
class ToolFacts:
    data_class: str | None
    reach: str | None
    credential_scope: str | None
    capabilities: tuple[CapabilityFacts, ...]
    annotations_trusted: bool = False

    def __post_init__(self) -> None:
        _check_choice("data_class", self.data_class, DATA_CLASSES)
        _check_choice("reach", self.reach, REACH)
        _check_choice("credential_scope", self.credential_scope, CREDENTIAL_SCOPES)
        if not isinstance(self.annotations_trusted, bool):
            raise ValueError(f"annotations_trusted must be True or False; got {self.annotations_trusted!r}")
        # Accept any iterable but store a tuple so facts stay hashable and ordered.
        object.__setattr__(self, "capabilities", tuple(self.capabilities))
        for capability in self.capabilities:
            if not isinstance(capability, CapabilityFacts):
                raise ValueError(f"capabilities must hold CapabilityFacts; got {capability!r}")


@dataclass(frozen=True)
class AgentFacts:
    autonomy_level: int | None
    human_in_loop: str | None
    data_class: str | None

    def __post_init__(self) -> None:
        _check_choice("autonomy_level", self.autonomy_level, AUTONOMY_LEVELS)
        _check_choice("human_in_loop", self.human_in_loop, HUMAN_IN_LOOP)
        _check_choice("data_class", self.data_class, DATA_CLASSES)


# --- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    code: str
    points: int
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "label": self.label}


@dataclass(frozen=True)
class Assessment:
    tier: Tier
    score: int
    factors: tuple[Factor, ...]
    floors: tuple[str, ...]
    rubric_version: str
    driver: str = ""

    def explain(self) -> str:
        """One line for humans: tier, contributing factors (highest first), floors, driver."""
        contributing = [factor for factor in self.factors if factor.points > 0]
        # sorted() is stable, so equal points keep the D, W, E, A, H, C order.
        contributing.sort(key=lambda factor: -factor.points)
        parts = [", ".join(f"{factor.label} ({factor.points})" for factor in contributing) or "no risk factors"]
        parts += [f"floor: {floor}" for floor in self.floors]
        if self.driver:
            parts.append(f"driven by {self.driver}")
        return f"{self.tier.value}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier.value,
            "score": self.score,
            "rubric_version": self.rubric_version,
            "factors": [factor.to_dict() for factor in self.factors],
            "floors": list(self.floors),
            "driver": self.driver,
            "explanation": self.explain(),
        }


# --- floors ------------------------------------------------------------------------------------------

_OPERATORS: Final[Mapping[str, Callable[[int, int], bool]]] = {">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Condition:
    code: str
    operator: str
    value: int

    def holds(self, points: Mapping[str, int]) -> bool:
        return _OPERATORS[self.operator](points[self.code], self.value)

    def __str__(self) -> str:
        return f"{self.code}{self.operator}{self.value}"


@dataclass(frozen=True)
class FloorRule:
    """If every condition holds, the tier is raised to at least `minimum`."""

    minimum: Tier
    conditions: tuple[Condition, ...]
    reason: str

    def applies(self, points: Mapping[str, int]) -> bool:
        return all(condition.holds(points) for condition in self.conditions)

    def describe(self) -> str:
        # Nothing ranks above critical, so "at least critical" would only add noise.
        bound = "" if self.minimum is Tier.CRITICAL else "at least "
        return f"{self.reason} ({bound}{self.minimum.value})"


# Kept as data so docs/risk-tiers.md can be checked against them.
FLOORS: Final[tuple[FloorRule, ...]] = (
    FloorRule(
        Tier.HIGH,
        (Condition("D", ">=", 2), Condition("E", "==", 2), Condition("W", ">=", 1)),
        "confidential-or-worse data, open world and any write",
    ),
    FloorRule(Tier.HIGH, (Condition("C", "==", 3),), "admin or organisation-wide long-lived credentials"),
    FloorRule(
        Tier.CRITICAL,
        (Condition("W", "==", 3), Condition("A", ">=", 2), Condition("H", "==", 2)),
        "destructive writes at autonomy level 4+ with no human in the loop",
    ),
    FloorRule(
        Tier.CRITICAL,
        (Condition("W", "==", 3), Condition("D", "==", 3), Condition("H", ">=", 1)),
        "destructive writes on restricted data without per-action approval",
    ),
)


def tier_for_score(score: int) -> Tier:
    for tier, lowest, highest in TIER_BANDS:
        if lowest <= score <= highest:
            return tier
    raise ValueError(f"score must be between 0 and {MAX_SCORE}; got {score!r}")


def _assess(factors: tuple[Factor, ...], driver: str = "") -> Assessment:
    points = {factor.code: factor.points for factor in factors}
    score = sum(points.values())
    tier = tier_for_score(score)
    applied = [rule for rule in FLOORS if rule.applies(points)]
    for rule in applied:
        if rule.minimum.rank > tier.rank:
            tier = rule.minimum
    return Assessment(
        tier=tier,
        score=score,
        factors=factors,
        floors=tuple(rule.describe() for rule in applied),
        rubric_version=RUBRIC_VERSION,
        driver=driver,
    )


# --- factors -----------------------------------------------------------------------------------------


def capability_write_class(capability: CapabilityFacts, annotations_trusted: bool) -> str:
    """read_only, additive or destructive, applying MCP's worst-case defaults to absent hints."""
    if not annotations_trusted:
        return "destructive"
    if capability.read_only is True:
        return "read_only"
    # destructiveHint only means something when the capability writes; absent = destructive.
    if capability.destructive is False:
        return "additive"
    return "destructive"


def capability_is_open_world(capability: CapabilityFacts, annotations_trusted: bool) -> bool:
    # openWorldHint defaults to true, and untrusted hints are ignored.
    return not annotations_trusted or capability.open_world is not False


def _data_factor(data_class: str | None) -> Factor:
    if data_class is None:
        return Factor("D", UNKNOWN_POINTS["D"], "unknown data class (counted as restricted)")
    return Factor("D", DATA_POINTS[data_class], _DATA_LABELS[data_class])


def _write_factor(capabilities: tuple[CapabilityFacts, ...], annotations_trusted: bool) -> Factor:
    if not capabilities:
        return Factor("W", UNKNOWN_POINTS["W"], "unknown capabilities (counted as destructive writes)")
    worst = max(
        (capability_write_class(capability, annotations_trusted) for capability in capabilities),
        key=WRITE_POINTS.__getitem__,
    )
    claimed = max(
        (capability_write_class(capability, True) for capability in capabilities),
        key=WRITE_POINTS.__getitem__,
    )
    if worst != claimed:
        return Factor("W", WRITE_POINTS[worst], "unverified annotations (counted as destructive writes)")
    return Factor("W", WRITE_POINTS[worst], _WRITE_LABELS[worst])


def _reach_factor(reach: str | None, capabilities: tuple[CapabilityFacts, ...], annotations_trusted: bool) -> Factor:
    open_world = REACH_POINTS["open_world"]
    if reach is None:
        return Factor("E", UNKNOWN_POINTS["E"], "unknown reach (counted as open world)")
    if REACH_POINTS[reach] == open_world:
        return Factor("E", open_world, _REACH_LABELS[reach])
    # Unknown capabilities fail closed on reach too, as MCP's openWorldHint defaults to true.
    if not capabilities:
        return Factor("E", open_world, "unknown capabilities (counted as open world)")
    if any(capability_is_open_world(capability, True) for capability in capabilities):
        return Factor("E", open_world, "open-world capability")
    if not annotations_trusted:
        return Factor("E", open_world, "unverified annotations (counted as open world)")
    return Factor("E", REACH_POINTS[reach], _REACH_LABELS[reach])


def _autonomy_factor(autonomy_level: int | None) -> Factor:
    if autonomy_level is None:
        return Factor("A", UNKNOWN_POINTS["A"], "unknown autonomy level (counted as level 5)")
    return Factor("A", AUTONOMY_POINTS[autonomy_level], f"autonomy level {autonomy_level}")


def _human_factor(human_in_loop: str | None, write_points: int) -> Factor:
    if write_points == 0:
        return Factor("H", 0, "no writes")
    if human_in_loop is None:
        return Factor("H", UNKNOWN_POINTS["H"], "unknown human in the loop (counted as none)")
    return Factor("H", HUMAN_POINTS[human_in_loop], _HUMAN_LABELS[human_in_loop])


def _credential_factor(credential_scope: str | None, overridden: bool = False) -> Factor:
    if credential_scope is None:
        return Factor("C", UNKNOWN_POINTS["C"], "unknown credential scope (counted as admin)")
    label = _CREDENTIAL_LABELS[credential_scope]
    return Factor("C", CREDENTIAL_POINTS[credential_scope], f"{label} (grant override)" if overridden else label)


# --- subjects ----------------------------------------------------------------------------------------


def assess_tool(tool: ToolFacts) -> Assessment:
    """The tool on its own, as if granted to the least supervised agent possible."""
    write = _write_factor(tool.capabilities, tool.annotations_trusted)
    if write.points == 0:
        human = Factor("H", 0, "no writes")
    else:
        human = Factor("H", UNKNOWN_POINTS["H"], "any agent (counted as no human in the loop)")
    factors = (
        _data_factor(tool.data_class),
        write,
        _reach_factor(tool.reach, tool.capabilities, tool.annotations_trusted),
        Factor("A", UNKNOWN_POINTS["A"], "any agent (counted as autonomy level 5)"),
        human,
        _credential_factor(tool.credential_scope),
    )
    return _assess(factors)


def _granted_capabilities(tool: ToolFacts, capability_names: Collection[str] | None) -> tuple[CapabilityFacts, ...]:
    if capability_names is None:
        return tool.capabilities
    # A bare string is a Collection[str] too, and would silently grant per character.
    if isinstance(capability_names, str):
        raise ValueError(f"capability_names must be a collection of names, not a string; got {capability_names!r}")
    known = [capability.name for capability in tool.capabilities]
    unknown = sorted(set(capability_names) - set(known))
    if unknown:
        accepted = known or ["(none: the tool declares no capabilities)"]
        raise _invalid("capability_names", unknown[0], accepted, none_allowed=False)
    wanted = set(capability_names)
    return tuple(capability for capability in tool.capabilities if capability.name in wanted)


def assess_grant(
    agent: AgentFacts,
    tool: ToolFacts,
    capability_names: Collection[str] | None = None,
    credential_scope: str | None = None,
) -> Assessment:
    """Score an agent's grant on a tool.

    D, E and C come from the tool, W from the granted capabilities, A and H from the agent.
    capability_names None grants every capability; credential_scope None keeps the tool's scope.
    """
    _check_choice("credential_scope", credential_scope, CREDENTIAL_SCOPES)
    capabilities = _granted_capabilities(tool, capability_names)
    write = _write_factor(capabilities, tool.annotations_trusted)
    overridden = credential_scope is not None
    factors = (
        _data_factor(tool.data_class),
        write,
        _reach_factor(tool.reach, capabilities, tool.annotations_trusted),
        _autonomy_factor(agent.autonomy_level),
        _human_factor(agent.human_in_loop, write.points),
        _credential_factor(credential_scope if overridden else tool.credential_scope, overridden),
    )
    return _assess(factors)


def _is_riskier(candidate: Assessment, incumbent: Assessment) -> bool:
    return (candidate.tier.rank, candidate.score) > (incumbent.tier.rank, incumbent.score)


def assess_agent(agent: AgentFacts, grant_assessments: Iterable[tuple[str, Assessment]] = ()) -> Assessment:
    """max(the agent's own facts, its riskiest active grant); a winning grant is named in `driver`.

    Without tools an agent has no side effects, so its own W, E and C are 0 (and H is 0: no writes).
    Ties keep the agent's own assessment, then the grant whose tool name sorts first.
    """
    own = _assess(
        (
            _data_factor(agent.data_class),
            Factor("W", 0, "no writes without tools"),
            Factor("E", 0, "no reach without tools"),
            _autonomy_factor(agent.autonomy_level),
            _human_factor(agent.human_in_loop, write_points=0),
            Factor("C", 0, "no credentials without tools"),
        )
    )
    riskiest, driver = own, ""
    for tool_name, grant in sorted(grant_assessments, key=lambda pair: pair[0]):
        if _is_riskier(grant, riskiest):
            riskiest, driver = grant, f"grant to tool {tool_name}"
    return replace(riskiest, driver=driver) if driver else own
