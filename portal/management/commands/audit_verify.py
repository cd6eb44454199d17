from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit import audit_verify_chain


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; exit 1 and name the first broken event when it is broken."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify_chain()
        if not result.ok:
            raise CommandError(
                f"Audit chain BROKEN at event #{result.broken_sequence}: {result.reason} "
                f"({result.checked} events verified before it).",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {result.checked} events verified."))
