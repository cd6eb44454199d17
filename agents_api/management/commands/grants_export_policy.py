"""`manage.py grants_export_policy --format agentgateway [--environment production] [--output FILE]`.

Writes the active grants as a gateway policy (see agents_api.policy): to stdout, or to FILE, replaced atomically
so a gateway watching the file never reads half of it. Run it again after grants change (from cron, or a hook).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents_api import selectors
from agents_api.policy import DEFAULT_IDENTITY, IDENTITY_PATTERN, agentgateway_config


class Command(BaseCommand):
    help = "Export the active grants as a gateway policy file (agentgateway configuration with CEL rules)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["agentgateway"], default="agentgateway")
        parser.add_argument("--environment", default="production", help="Whose grants to export (production).")
        parser.add_argument("--identity", default=DEFAULT_IDENTITY, help="CEL path of the agent's name (jwt.sub).")
        parser.add_argument("--output", help="File to write (replaced atomically); stdout when left out.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not IDENTITY_PATTERN.fullmatch(options["identity"]):
            raise CommandError("--identity must be a CEL field path such as jwt.sub.")
        grants = selectors.policy_grants(environment=options["environment"].strip().lower())
        text = json.dumps(agentgateway_config(grants, identity=options["identity"]), indent=2) + "\n"
        if not options["output"]:
            self.stdout.write(text, ending="")
            return
        target = Path(options["output"])
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, target)
        rules = len(json.loads(text)["mcp"]["policies"]["mcpAuthorization"]["rules"])
        self.stderr.write(f"wrote {target}: {rules} rule(s) for {len(grants)} active grant(s)")
