"""Signals other plugins listen to; the catalog itself knows nothing of who listens (approvals does)."""

from django.dispatch import Signal

# Sent inside the writing transaction after an agent or tool changed and was re-scored.
# kwargs: instance (Agent or Tool), changes (dict of field -> {before, after}), previous_tier, tier
entity_changed = Signal()

# Sent inside the writing transaction after an agent's or tool's owner team changed (by whatever door).
# kwargs: instance (Agent or Tool), previous_owner (Team), owner (Team)
owner_changed = Signal()

# Sent by the call-time grant check (agents_api) after every denied check, with keyword arguments agent, tool,
# capability (None when the caller named none), environment, verdict (a catalog.grant_rules.Verdict), reason and
# grant_id (the closest grant, or None). The runtime app records it as a finding. Receivers run in the check's
# request; one that fails is logged, never turns the decision into an error.
grant_check_denied = Signal()
