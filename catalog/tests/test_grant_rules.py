from datetime import UTC, datetime, timedelta

import pytest

from catalog.grant_rules import GrantFacts, Verdict, decide

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def grant(**overrides: object) -> GrantFacts:
    values: dict = {
        "grant_id": 7,
        "environment": "production",
        "status": "approved",
        "capability_names": ("search", "read_file"),
        "expires_at": NOW + timedelta(days=1),
    }
    values.update(overrides)
    return GrantFacts(**values)


def ask(grants: list[GrantFacts], capability: str | None = "search", environment: str = "production"):
    return decide(agent="bot", tool="gh", capability=capability, environment=environment, grants=grants, now=NOW)


def test_it_allows_an_approved_unexpired_grant_that_covers_the_capability() -> None:
    decision = ask([grant()])
    assert decision.allowed
    assert decision.verdict is Verdict.ALLOWED
    assert decision.grant_id == 7


def test_it_allows_a_grant_that_never_expires() -> None:
    assert ask([grant(expires_at=None)]).allowed


def test_it_denies_without_any_grant() -> None:
    decision = ask([])
    assert (decision.allowed, decision.verdict, decision.grant_id) == (False, Verdict.NO_GRANT, None)


def test_it_names_the_environments_that_are_granted() -> None:
    decision = ask([grant(environment="staging")])
    assert decision.verdict is Verdict.ENVIRONMENT_NOT_GRANTED
    assert "staging" in decision.reason


def test_it_denies_a_capability_the_grant_does_not_name() -> None:
    decision = ask([grant()], capability="delete_repo")
    assert decision.verdict is Verdict.CAPABILITY_NOT_GRANTED
    assert "search, read_file" in decision.reason


def test_a_grant_with_no_named_capabilities_covers_nothing() -> None:
    assert ask([grant(capability_names=())], capability="search").verdict is Verdict.CAPABILITY_NOT_GRANTED
    assert ask([grant(capability_names=())], capability=None).verdict is Verdict.CAPABILITY_NOT_GRANTED


def test_a_call_naming_no_capability_is_allowed_by_a_grant_that_covers_some() -> None:
    assert ask([grant()], capability=None).allowed


def test_it_denies_an_approved_grant_past_its_expiry() -> None:
    decision = ask([grant(expires_at=NOW)])
    assert decision.verdict is Verdict.GRANT_EXPIRED
    assert decision.expires_at == NOW


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("requested", Verdict.GRANT_PENDING),
        ("denied", Verdict.GRANT_DENIED),
        ("revoked", Verdict.GRANT_REVOKED),
        ("expired", Verdict.GRANT_EXPIRED),
    ],
)
def test_it_denies_grants_that_are_not_approved(status: str, verdict: Verdict) -> None:
    decision = ask([grant(status=status)])
    assert (decision.allowed, decision.verdict, decision.grant_id) == (False, verdict, 7)
