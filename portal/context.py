"""Per-request (or per-task) context: who acts and which request this is, for logs and the audit trail."""

from __future__ import annotations

import contextlib
import re
import uuid
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


_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
API_PREFIXES = ("/api/", "/mcp/", "/v0.1/")


@contextlib.contextmanager
def request_scope(*, incoming_id: str, client_ip: str | None, path: str) -> Iterator[str]:
    """One web request's context (request id, client address, no actor yet, its door); yields the request id,
    kept from X-Request-ID when well-formed. Every way a request is answered enters it once."""
    request_id = incoming_id if _SAFE_REQUEST_ID.match(incoming_id) else uuid.uuid4().hex
    tokens = (
        request_id_var.set(request_id),
        client_ip_var.set(client_ip),
        actor_var.set(None),
        channel_var.set("api" if path.startswith(API_PREFIXES) else "ui"),
    )
    try:
        yield request_id
    finally:
        request_id_var.reset(tokens[0])
        client_ip_var.reset(tokens[1])
        actor_var.reset(tokens[2])
        channel_var.reset(tokens[3])


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
