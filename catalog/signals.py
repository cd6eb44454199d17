"""Signals other plugins listen to; the catalog itself knows nothing of who listens (approvals does)."""

from django.dispatch import Signal

# Sent once per change of an agent's or tool's facts (every door: UI, API, imports, location sync, scaffolder,
# attestation), inside the writing transaction, after the entity was written and re-scored (catalog.services.
# _facts_changed). kwargs: instance (Agent or Tool, written), changes (dict of field -> {before, after}),
# previous_tier, tier, fingerprint (catalog.fingerprints digest of the facts reviewers judge, after the change).
entity_changed = Signal()
