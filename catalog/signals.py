"""Signals other plugins listen to; the catalog itself knows nothing of who listens (approvals does)."""

from django.dispatch import Signal

# Sent once per change of an agent's or tool's facts (every door: UI, API, imports, location sync, scaffolder,
# attestation), inside the writing transaction, after the entity was written and re-scored (catalog.services.
# _facts_changed). kwargs: instance (Agent or Tool, written), changes (dict of field -> {before, after}),
# previous_tier, tier, fingerprint (catalog.fingerprints digest of the facts reviewers judge, after the change).
entity_changed = Signal()

# Sent inside the writing transaction after an agent's or tool's owner team changed (by whatever door).
# kwargs: instance (Agent or Tool), previous_owner (Team), owner (Team)
owner_changed = Signal()

# Sent by the call-time grant check (agents_api) after every denied check, with keyword arguments agent, tool,
# capability (None when the caller named none), environment, verdict (a catalog.grant_rules.Verdict), reason and
# grant_id (the closest grant, or None). The runtime app records it as a finding. Receivers run in the check's
# request; one that fails is logged, never turns the decision into an error.
grant_check_denied = Signal()
