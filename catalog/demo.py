"""Demo catalog for `make run`: the teams, who is in them, and the demo descriptors (idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from catalog.importing import import_inputs
from catalog.models import EntitySource, Team, TeamMembership
from catalog.teams import team_create, team_set_member

DEMO_CATALOG = Path(__file__).parent / "demo" / "catalog-info.yaml"
TEAMS = [
    ("platform", "Platform Engineering", "Runs the developer platform and this portal."),
    ("payments", "Payments", "Owns checkout, refunds and the payment gateway."),
    ("security", "Security", "Application and cloud security."),
    ("data-science", "Data Science", "Forecasting and analytics."),
]
# username -> (team, role); the users themselves are portal's demo people
MEMBERSHIPS = [
    ("admin", "platform", TeamMembership.Role.MAINTAINER),
    ("alice", "payments", TeamMembership.Role.MAINTAINER),
    ("bob", "payments", TeamMembership.Role.MEMBER),
    ("bob", "data-science", TeamMembership.Role.MAINTAINER),
    ("sam", "security", TeamMembership.Role.MEMBER),
    ("sarah", "security", TeamMembership.Role.MAINTAINER),
    ("dora", "data-science", TeamMembership.Role.MEMBER),
]


def seed(stdout: Any) -> None:
    for name, title, description in TEAMS:
        if not Team.objects.filter(name=name).exists():
            team_create(name=name, title=title, description=description, email=f"{name}@example.com")
    users = {
        user.get_username(): user for user in get_user_model().objects.filter(username__in=[m[0] for m in MEMBERSHIPS])
    }
    for username, team_name, role in MEMBERSHIPS:
        if username in users:
            team_set_member(team=Team.objects.get(name=team_name), user=users[username], role=role)
    # The demo file is the entities' source: `catalog_import` of the same file updates them, another file not.
    path = DEMO_CATALOG.resolve()
    report = import_inputs([(str(path), path.read_bytes())], source_kind=EntitySource.FILE)
    stdout.write(f"catalog demo: created {report.created}, unchanged {report.unchanged}, failed {report.failed}")
    for issue in report.errors:
        stdout.write(f"  {issue}")
