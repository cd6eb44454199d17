"""`--as USERNAME` for management commands that write: the audit trail names the person who ran them.

Required in production. Elsewhere it defaults to the first platform admin (superuser); on a database that has none
yet the command acts as the system, and says so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError

from portal.context import SYSTEM_ACTOR, acting_as, actor_for_user, through


def add_as_argument(parser: Any, *aliases: str) -> None:
    parser.add_argument(
        "--as",
        *aliases,
        dest="as_user",
        metavar="USERNAME",
        help="The person this command acts for, named in the audit trail (required in production; elsewhere "
        "the first platform admin).",
    )


def command_user(username: str | None) -> AbstractBaseUser | None:
    """The user `--as` names; without it, the default outside production (None: no admin exists yet)."""
    users = get_user_model().objects.filter(is_active=True)
    if username:
        user = users.filter(username=username).first()
        if user is None:
            raise CommandError(f"--as {username}: no active user has that username.")
        return user
    if settings.IS_PRODUCTION:
        raise CommandError("--as USERNAME is required in production mode: the audit trail names who ran this.")
    return users.filter(is_superuser=True).order_by("pk").first()


@contextlib.contextmanager
def acting_for(user: AbstractBaseUser | None, *, write: Any = None) -> Iterator[None]:
    """Act as the user (the audit names them) through the command line."""
    if user is None and write is not None:
        write("note: no platform admin exists yet; acting as the system (pass --as USERNAME to name a person).")
    with acting_as(actor_for_user(user) or SYSTEM_ACTOR), through("cli"):
        yield
