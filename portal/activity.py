"""Audit events in plain words, for people: "alice approved stage Security review", not approvals.decision.approve.

Pure: action code, actor, object and changes in; one sentence out. The audit page, the entity histories and the
approval timeline all say it the same way. An action without a phrase here still reads as words, never as a code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOUNS = {
    "approvalrequest": "request",
    "apitoken": "API token",
    "aimodel": "model",
    "scaffoldrun": "scaffolder run",
    "user": "user",
    "toolgrant": "grant",
    "goldenpathtemplate": "golden path",
}

# verb -> (phrase before the object, phrase after it)
VERBS = {
    "created": ("created", ""),
    "updated": ("updated", ""),
    "deleted": ("deleted", ""),
    "drafted": ("drafted", ""),
    "submitted": ("submitted", ""),
    "resubmitted": ("resubmitted", ""),
    "withdrawn": ("withdrew", ""),
    "approved": ("approved", ""),
    "rejected": ("rejected", ""),
    "denied": ("denied", ""),
    "revoked": ("revoked", ""),
    "requested": ("requested", ""),
    "issued": ("issued", ""),
    "expired": ("expired", ""),
    "escalated": ("escalated", ""),
    "rescored": ("re-assessed the risk of", ""),
    "attested": ("attested", ""),
    "annotations_attested": ("attested the capability hints of", ""),
    "changes_requested": ("asked for changes to", ""),
    "checks_completed": ("finished the automated checks of", ""),
    "stage_entered": ("moved", "to the next stage"),
    "status_changed": ("changed the status of", ""),
    "member_set": ("set a member of", ""),
    "member_removed": ("removed a member from", ""),
    "synced": ("synced", ""),
    "started": ("started", ""),
    "retried": ("retried", ""),
    "update_requested": ("requested an update of", ""),
    "rights_synced": ("updated from single sign-on the roles and teams of", ""),
    "user_created": ("created from single sign-on", ""),
    "version_created": ("added a version of", ""),
}
DECISIONS = {"approve": "approved", "reject": "rejected at", "request_changes": "asked for changes at"}


def words(value: Any) -> str:
    return "" if value is None else str(value).replace("_", " ").replace("-", " ")


def _before_after(changes: Mapping[str, Any], key: str) -> tuple[Any, Any] | None:
    change = changes.get(key)
    if isinstance(change, Mapping) and {"before", "after"} <= set(change):
        return change["before"], change["after"]
    return None


def describe(
    *,
    action: str,
    actor: str = "",
    object_type: str = "",
    object_repr: str = "",
    changes: Any = None,
    subject: str = "",
) -> str:
    """One sentence for an audit event. `object_type` is "app.model" as stored on AuditEvent; `subject` replaces
    the object's noun and name (a request's own timeline says "the request")."""
    changes = changes if isinstance(changes, Mapping) else {}
    who = actor or "someone"
    parts = action.split(".")
    if len(parts) == 3 and parts[1] == "decision":
        stage = changes.get("stage", "")
        verb = DECISIONS.get(parts[2], words(parts[2]))
        if parts[2] == "refused":
            return f"{who} was refused a decision at stage {stage}".strip()
        return f"{who} {verb} stage {stage}".strip() if stage else f"{who} {verb} the request"
    model = object_type.rsplit(".", 1)[-1] if object_type else (parts[1] if len(parts) == 3 else "")
    noun = NOUNS.get(model, words(model)) if model else ""
    verb = parts[-1] if len(parts) >= 2 else action
    before, after = VERBS.get(verb, (words(verb), ""))
    subject = subject or " ".join(part for part in (noun, object_repr) if part) or "it"
    sentence = f"{who} {before} {subject}"
    if after:
        sentence += f" {after}"
    if verb == "expired":
        sentence = f"{subject[0].upper()}{subject[1:]} expired"
    elif verb == "status_changed" and (pair := _before_after(changes, "status")):
        sentence += f" from {words(pair[0]) or 'none'} to {words(pair[1])}"
    elif verb == "member_set" and changes.get("user"):
        role = _before_after(changes, "role")
        sentence = f"{who} made {changes['user']} {words(role[1]) if role else 'a member'} of {subject}"
    elif verb == "member_removed" and changes.get("user"):
        sentence = f"{who} removed {changes['user']} from {subject}"
    elif verb == "stage_entered" and changes.get("stage"):
        sentence = f"{who} moved {subject} to stage {changes['stage']}"
    return sentence
