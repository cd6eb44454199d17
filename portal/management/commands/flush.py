"""Django's flush, which first removes the audit chain head: on SQLite the append-only triggers let audit events
and checkpoints be deleted only once it is gone (a reset of the whole database; PostgreSQL's flush truncates, which
its row triggers do not stop). A new chain head is created after it."""

from typing import Any

from django.core.management.commands.flush import Command as FlushCommand

from portal.audit import GENESIS_HASH
from portal.models import AuditChainHead


class Command(FlushCommand):
    def handle(self, **options: Any) -> None:
        if options.get("interactive"):
            answer = input(
                "This will remove ALL data from the database, the audit trail included. Type 'yes' to continue: "
            )
            if answer != "yes":
                self.stdout.write("Flush cancelled.")
                return
        heads = AuditChainHead.objects.using(options["database"])
        heads.all().delete()
        super().handle(**{**options, "interactive": False})
        heads.create(id=1, last_sequence=0, last_hash=GENESIS_HASH, last_event_id=0)  # guarded again
