import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from catalog.importing import import_parsed
from catalog.sources import SourceError, parse_sources
from portal.context import SYSTEM_ACTOR, acting_as


class Command(BaseCommand):
    help = (
        "Import Backstage catalog-info.yaml, MCP server.json and A2A agent cards from files, folders or URLs "
        "(an A2A base URL is discovered at /.well-known/agent-card.json). Idempotent; exit 1 if anything failed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument("--owner", help="Owner team for formats that carry none (server.json, agent cards).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            results = parse_sources(options["sources"])
        except SourceError as exc:
            raise CommandError(str(exc)) from exc
        with acting_as(SYSTEM_ACTOR):
            report = import_parsed(results, default_owner=options["owner"], dry_run=options["dry_run"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        else:
            prefix = "DRY RUN: " if report.dry_run else ""
            self.stdout.write(
                f"{prefix}created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
                f"skipped {report.skipped}, failed {report.failed}"
            )
            for item in report.skipped_items:
                self.stdout.write(
                    f"  skipped {item['source']} document {item['index']}: {item['kind']}: {item['reason']}"
                )
            for warning in report.warnings:
                self.stdout.write(self.style.WARNING(f"  warning: {warning}"))
            for issue in report.errors:
                self.stderr.write(self.style.ERROR(f"  error: {issue}"))
        if not report.ok:
            raise CommandError(f"{report.failed} document(s) failed to import.", returncode=1)
