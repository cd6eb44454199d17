"""Per-request (or per-task) context: who acts and which request this is, for logs and the audit trail."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "token" or "system"
    user_id: int | None
    label: str
    token_id: int | None = None


SYSTEM_ACTOR = Actor(kind="system", user_id=None, label="system")

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
client_ip_var: ContextVar[str | None] = ContextVar("client_ip", default=None)
actor_var: ContextVar[Actor | None] = ContextVar("actor", default=None)
# The door a change comes through: "ui" (web pages), "api" (REST and MCP), "cli" (management commands); empty for
# tasks and code outside those. The catalog records it as the source of what it creates.
channel_var: ContextVar[str] = ContextVar("channel", default="")


def current_actor() -> Actor:
    return actor_var.get() or SYSTEM_ACTOR


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = actor_var.set(actor)
    try:
        yield
    finally:
        actor_var.reset(token)


@contextlib.contextmanager
def through(channel: str) -> Iterator[None]:
    token = channel_var.set(channel)
    try:
        yield
    finally:
        channel_var.reset(token)


def current_channel() -> str:
    return channel_var.get()


def actor_for_user(user: object) -> Actor | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Actor(kind="user", user_id=user.pk, label=user.get_username())  # type: ignore[attr-defined]
