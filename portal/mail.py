"""The development e-mail backend: one readable log line per message, the whole message in a file.

Django's console backend prints every message whole to stdout; inside a Celery worker stdout is redirected to the
log at WARNING, so each notification became a block of WARNING lines. Here a message is one INFO line (recipients
and subject) and its full text is kept as ``.eml`` under ``EMAIL_FILE_PATH`` (``var/mail``) for anyone who wants it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

logger = logging.getLogger("portal.mail")


class LogEmailBackend(BaseEmailBackend):
    def __init__(self, *, fail_silently: bool = False, **kwargs: Any) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.directory = Path(settings.EMAIL_FILE_PATH)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
            path = self.directory / name
            path.write_bytes(message.message().as_bytes(linesep="\n"))
            logger.info(
                "e-mail to %s: %s (%s)", ", ".join(message.recipients()), message.subject, path, extra={"mail": name}
            )
            sent += 1
        return sent
