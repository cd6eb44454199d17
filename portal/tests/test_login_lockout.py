"""Lock-outs per username and address, and per address (password spraying)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _login(username: str, password: str, address: str) -> int:
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password}).status_code


def test_it_locks_an_address_that_sprays_many_usernames(make_user: Any, settings: Any) -> None:
    make_user("alice")
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 10
    for index in range(9):
        assert _login(f"user{index}", "wrong-wrong", "10.0.0.1") == 200
    assert _login("user9", "wrong-wrong", "10.0.0.1") == 429
    # Each username failed once only, yet the address is locked, even for a correct password.
    assert _login("alice", "correct-horse-battery", "10.0.0.1") == 429
    assert _login("alice", "correct-horse-battery", "10.0.0.2") == 302


def test_a_username_locked_from_one_address_still_signs_in_from_another(make_user: Any, settings: Any) -> None:
    make_user("alice")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login("alice", "wrong-wrong", "10.0.0.1")
    assert _login("alice", "correct-horse-battery", "10.0.0.1") == 429
    assert _login("alice", "correct-horse-battery", "10.0.0.2") == 302


def test_a_successful_sign_in_does_not_clear_the_address_count_of_other_usernames(
    make_user: Any, settings: Any
) -> None:
    make_user("mallory")
    make_user("alice")
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    for index in range(5):
        _login(f"user{index}", "wrong-wrong", "10.0.0.1")
    assert _login("mallory", "correct-horse-battery", "10.0.0.1") == 302
    _login("user9", "wrong-wrong", "10.0.0.1")
    assert _login("alice", "correct-horse-battery", "10.0.0.1") == 429


def test_below_both_limits_nobody_is_locked(make_user: Any, settings: Any) -> None:
    make_user("alice")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login("alice", "wrong-wrong", "10.0.0.1")
    assert _login("alice", "correct-horse-battery", "10.0.0.1") == 302
