"""Signals other plugins listen to; the catalog itself knows nothing of who listens (approvals does)."""

from django.dispatch import Signal

# Sent inside the writing transaction after an agent or tool changed and was re-scored.
# kwargs: instance (Agent or Tool), changes (dict of field -> {before, after}), previous_tier, tier
entity_changed = Signal()

# Sent inside the writing transaction after an agent's or tool's owner team changed (by whatever door).
# kwargs: instance (Agent or Tool), previous_owner (Team), owner (Team)
owner_changed = Signal()
