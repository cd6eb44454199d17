import logging

from portal.context import current_actor, request_id_var


class RequestContextFilter(logging.Filter):
    """Puts the request id (and who acts) on every record so JSON logs can be joined with the audit trail."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.actor = current_actor().label
        return True
