"""Demo data for `make run`: idempotent. The portal creates the demo people (one per role); every app then adds its
own objects through its app config's `seed_demo(stdout)` hook (catalog/demo.py, approvals/demo.py,
scaffolder/demo.py), in INSTALLED_APPS order, so the portal imports no app."""

from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.context import SYSTEM_ACTOR, acting_as, through
from portal.roles import (
    BUSINESS_OWNER,
    DATA_OWNER,
    ENGINEER,
    PLATFORM_ADMIN,
    ROLE_GROUPS,
    SECURITY_LEAD,
    SECURITY_REVIEWER,
    role_group,
)

DEMO_PASSWORD = "demo-portal-pass"  # noqa: S105 - printed for people trying the portal; refused in production

# username, full name, roles (their teams are the catalog demo's)
USERS = [
    ("admin", "Ada Admin", [PLATFORM_ADMIN]),
    ("alice", "Alice Engineer", []),
    ("bob", "Bob Engineer", []),
    ("sam", "Sam Reviewer", [SECURITY_REVIEWER]),
    ("sarah", "Sarah Lead", [SECURITY_REVIEWER, SECURITY_LEAD]),
    ("dora", "Dora Data-Owner", [DATA_OWNER]),
    ("olga", "Olga Business-Owner", [BUSINESS_OWNER]),
]


class Command(BaseCommand):
    help = "Load demo teams, users (one per role) and every plugin's demo objects. Safe to run again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--allow-production", action="store_true", help="Seed even in production mode.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION and not options["allow_production"]:
            raise CommandError("seed_demo creates users with a published password; refused in production mode.")
        with acting_as(SYSTEM_ACTOR), through("cli"):  # the demo's entities belong to the command line
            with transaction.atomic():
                self._seed_people()
            # Each plugin's writes are transactions of their own, so follow-up work queued on commit runs.
            for config in apps.get_app_configs():
                hook = getattr(config, "seed_demo", None)
                if hook is not None:
                    hook(self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Log in with any of these (password: {DEMO_PASSWORD}):"))
        for username, full_name, roles in USERS:
            self.stdout.write(f"  {username:<6} {full_name:<22} roles: {', '.join(roles) or ENGINEER}")

    def _seed_people(self) -> None:
        for role in ROLE_GROUPS:
            role_group(role)
        user_model = get_user_model()
        for username, full_name, roles in USERS:
            user = user_model.objects.filter(username=username).first()
            if user is None:
                first, _, last = full_name.partition(" ")
                user = user_model.objects.create_user(
                    username=username,
                    email=f"{username}@example.com",
                    password=DEMO_PASSWORD,
                    first_name=first,
                    last_name=last,
                )
                user.is_staff = PLATFORM_ADMIN in roles
                user.is_superuser = PLATFORM_ADMIN in roles
                user.save(update_fields=["is_staff", "is_superuser"])
            user.groups.add(role_group(ENGINEER), *(role_group(role) for role in roles))
