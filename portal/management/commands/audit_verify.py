from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit import audit_verify_chain


class Command(BaseCommand):
    help = (
        "Seal what is ready, then check the audit trail: each event against its hash, the chain, and the signed "
        "checkpoints (database and file); exit 1 and name the first event that disagrees."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify_chain()
        for note in result.notes:
            self.stderr.write(f"note: {note}")
        if not result.ok:
            raise CommandError(
                f"Audit chain BROKEN at event #{result.broken_sequence}: {result.reason} "
                f"({result.checked} events verified before it).",
                returncode=1,
            )
        waiting = f"; {result.waiting} recent event(s) wait to be sealed" if result.waiting else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {result.checked} events verified, "
                f"{result.checkpoints} signed checkpoint(s) matched{waiting}."
            )
        )
