"""Demo data for `make run`: idempotent, and each plugin adds its own objects through its `seed_demo` hook."""

from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from catalog.models import Team, TeamMembership
from catalog.teams import team_create, team_set_member
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

TEAMS = [
    ("platform", "Platform Engineering", "Runs the developer platform and this portal."),
    ("payments", "Payments", "Owns checkout, refunds and the payment gateway."),
    ("security", "Security", "Application and cloud security."),
    ("data-science", "Data Science", "Forecasting and analytics."),
]
# username, full name, roles, team memberships
USERS = [
    ("admin", "Ada Admin", [PLATFORM_ADMIN], [("platform", TeamMembership.Role.MAINTAINER)]),
    ("alice", "Alice Engineer", [], [("payments", TeamMembership.Role.MAINTAINER)]),
    (
        "bob",
        "Bob Engineer",
        [],
        [("payments", TeamMembership.Role.MEMBER), ("data-science", TeamMembership.Role.MAINTAINER)],
    ),
    ("sam", "Sam Reviewer", [SECURITY_REVIEWER], [("security", TeamMembership.Role.MEMBER)]),
    (
        "sarah",
        "Sarah Lead",
        [SECURITY_REVIEWER, SECURITY_LEAD],
        [("security", TeamMembership.Role.MAINTAINER)],
    ),
    ("dora", "Dora Data-Owner", [DATA_OWNER], [("data-science", TeamMembership.Role.MEMBER)]),
    ("olga", "Olga Business-Owner", [BUSINESS_OWNER], []),
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
        for username, full_name, roles, teams in USERS:
            described = ", ".join(roles) or ENGINEER
            memberships = ", ".join(f"{team} {role}" for team, role in teams) or "no team"
            self.stdout.write(f"  {username:<6} {full_name:<22} roles: {described}; teams: {memberships}")

    def _seed_people(self) -> None:
        for role in ROLE_GROUPS:
            role_group(role)
        for name, title, description in TEAMS:
            if not Team.objects.filter(name=name).exists():
                team_create(name=name, title=title, description=description, email=f"{name}@example.com")
        user_model = get_user_model()
        for username, full_name, roles, teams in USERS:
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
            for team_name, role in teams:
                team_set_member(team=Team.objects.get(name=team_name), user=user, role=role)
