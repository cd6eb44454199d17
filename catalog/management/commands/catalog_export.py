from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from catalog.exporting import catalog_export_backstage
from catalog.formats import ExportError


class Command(BaseCommand):
    help = "Export the catalog as Backstage entities (multi-document catalog-info.yaml)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--format", choices=["backstage"], default="backstage")
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")
        parser.add_argument("--namespace", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = catalog_export_backstage(namespace=options["namespace"])
        except ExportError as exc:
            raise CommandError(f"export refused: {exc}") from exc
        if options["output"]:
            Path(options["output"]).write_text(text)
            self.stdout.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")
