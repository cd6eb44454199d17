import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from catalog.importing import import_parsed
from catalog.models import EntitySource
from catalog.sources import SourceError, parse_sources
from portal.management.commands._acting import acting_for, add_as_argument, command_user


class Command(BaseCommand):
    help = (
        "Import Backstage catalog-info.yaml, MCP server.json and A2A agent cards from files, folders or URLs "
        "(an A2A base URL is discovered at /.well-known/agent-card.json). Idempotent. An entity another source "
        "owns is refused (exit 1) unless a platform admin adopts it with --adopt; exit 1 if anything failed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument("--owner", help="Owner team for formats that carry none (server.json, agent cards).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument(
            "--adopt", action="store_true", help="Take over entities another source owns (platform admins; audited)."
        )
        add_as_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user = command_user(options["as_user"])
        # A file is one source wherever it is named from: its absolute path.
        sources = [source if "://" in source else str(Path(source).resolve()) for source in options["sources"]]
        try:
            results = parse_sources(sources)
        except SourceError as exc:
            raise CommandError(str(exc)) from exc
        with acting_for(user, write=self.stderr.write):
            report = import_parsed(
                results,
                actor=user,
                default_owner=options["owner"],
                dry_run=options["dry_run"],
                source_kind=EntitySource.FILE,
                adopt=options["adopt"],
            )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        else:
            self._write_report(report)
        if not report.ok:
            raise CommandError(f"{report.failed} document(s) failed to import.", returncode=1)

    def _write_report(self, report: Any) -> None:
        prefix = "DRY RUN: " if report.dry_run else ""
        merged = f", merged {report.merged}" if report.merged else ""
        self.stdout.write(
            f"{prefix}created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
            f"skipped {report.skipped}{merged}, failed {report.failed}"
        )
        for item in report.skipped_items:
            self.stdout.write(f"  skipped {item['source']} document {item['index']}: {item['kind']}: {item['reason']}")
        for change in report.owner_changes:
            self.stdout.write(f"  owner changed: {change['kind']} {change['name']}: {change['from']} -> {change['to']}")
        for adoption in report.adopted:
            self.stdout.write(
                f"  adopted: {adoption['kind']} {adoption['name']} from {adoption['from']} (now {adoption['to']})"
            )
        for held in report.held:
            self.stdout.write(f"  held for approval: {held['message']}")
        for conflict in report.conflicts:
            self.stderr.write(
                self.style.ERROR(
                    f"  conflict: {conflict['source']} document {conflict['index']}: {conflict['kind']} "
                    f"{conflict['name']} belongs to {conflict['current_source']}"
                )
            )
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(f"  warning: {warning}"))
        for issue in report.errors:
            self.stderr.write(self.style.ERROR(f"  error: {issue}"))
