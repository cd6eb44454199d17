"""Signals other plugins listen to; agents_api knows nothing of who listens (the runtime app records findings).

`grant_check_denied` is sent after every denied call-time check, with keyword arguments agent, tool, capability
(None when the caller named none), environment, verdict (a catalog.grant_rules.Verdict), reason and grant_id (the
closest grant, or None). Receivers run in the check's request; one that fails is logged, never turns the decision
into an error.
"""

from django.dispatch import Signal

grant_check_denied = Signal()
