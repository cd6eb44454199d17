"""Decisions name the facts they were made on; separation of duties is enforced by reading the request.

The copied `Decision.requester` column (and its check) is replaced by triggers that read the request's row: a
decision whose reviewer is the request's requester is refused, and so is a request whose requester is changed to
someone who already decided it. Raw SQL because Django has no triggers; PostgreSQL and SQLite spell them
differently. A later migration that rebuilds approvals_decision on SQLite (Django copies the table) must create the
triggers again: approvals/tests/test_separation_of_duties.py fails if they are missing.
"""

from django.db import migrations, models

POSTGRES_CREATE = """
CREATE OR REPLACE FUNCTION approvals_decision_not_by_requester() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM approvals_approvalrequest r WHERE r.id = NEW.request_id AND r.requester_id = NEW.reviewer_id)
    THEN
        RAISE EXCEPTION 'separation of duties: user % requested approval request % and cannot decide it',
            NEW.reviewer_id, NEW.request_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER approvals_decision_not_by_requester BEFORE INSERT OR UPDATE OF reviewer_id, request_id
    ON approvals_decision FOR EACH ROW EXECUTE FUNCTION approvals_decision_not_by_requester();
CREATE OR REPLACE FUNCTION approvals_requester_not_a_reviewer() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM approvals_decision d WHERE d.request_id = NEW.id AND d.reviewer_id = NEW.requester_id)
    THEN
        RAISE EXCEPTION 'separation of duties: user % already decided approval request % and cannot be its requester',
            NEW.requester_id, NEW.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER approvals_requester_not_a_reviewer BEFORE UPDATE OF requester_id
    ON approvals_approvalrequest FOR EACH ROW EXECUTE FUNCTION approvals_requester_not_a_reviewer();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS approvals_requester_not_a_reviewer ON approvals_approvalrequest;
DROP FUNCTION IF EXISTS approvals_requester_not_a_reviewer();
DROP TRIGGER IF EXISTS approvals_decision_not_by_requester ON approvals_decision;
DROP FUNCTION IF EXISTS approvals_decision_not_by_requester();
"""
SQLITE_DECISION_GUARD = (
    "FOR EACH ROW WHEN EXISTS (SELECT 1 FROM approvals_approvalrequest r "
    "WHERE r.id = NEW.request_id AND r.requester_id = NEW.reviewer_id) "
    "BEGIN SELECT RAISE(ABORT, 'separation of duties: the requester of an approval request cannot decide it'); END"
)
SQLITE_CREATE = [
    f"CREATE TRIGGER approvals_decision_not_by_requester_insert BEFORE INSERT ON approvals_decision "
    f"{SQLITE_DECISION_GUARD}",
    f"CREATE TRIGGER approvals_decision_not_by_requester_update BEFORE UPDATE OF reviewer_id, request_id "
    f"ON approvals_decision {SQLITE_DECISION_GUARD}",
    "CREATE TRIGGER approvals_requester_not_a_reviewer BEFORE UPDATE OF requester_id ON approvals_approvalrequest "
    "FOR EACH ROW WHEN EXISTS (SELECT 1 FROM approvals_decision d "
    "WHERE d.request_id = NEW.id AND d.reviewer_id = NEW.requester_id) "
    "BEGIN SELECT RAISE(ABORT, 'separation of duties: a reviewer of an approval request cannot be its requester'); END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS approvals_decision_not_by_requester_insert",
    "DROP TRIGGER IF EXISTS approvals_decision_not_by_requester_update",
    "DROP TRIGGER IF EXISTS approvals_requester_not_a_reviewer",
]


OPEN_STATES = ("draft", "checking", "in_review", "changes_requested")
HINTS = ("read_only", "destructive", "idempotent", "open_world")


def _tool_facts(tool):  # type: ignore[no-untyped-def]
    from catalog import fingerprints

    return fingerprints.tool_fact_set(
        name=tool.name, owner=tool.owner.name, kind=tool.kind, version=tool.version, endpoint_url=tool.endpoint_url,
        transport=tool.transport, data_class=tool.data_class, reach=tool.reach,
        credential_scope=tool.credential_scope, annotations_trusted=tool.annotations_trusted,
        capabilities=[{"name": cap.name, **{hint: getattr(cap, hint) for hint in HINTS}} for cap in tool.capabilities.all()],
    )  # fmt: skip


def _agent_facts(agent):  # type: ignore[no-untyped-def]
    from catalog import fingerprints

    return fingerprints.agent_fact_set(
        name=agent.name, owner=agent.owner.name, agent_type=agent.agent_type, autonomy_level=agent.autonomy_level,
        human_in_loop=agent.human_in_loop, data_class=agent.data_class, runtime=agent.runtime,
        models=[model.name for model in agent.models_used.all()], environments=agent.environments or [],
        a2a_endpoint=agent.a2a_endpoint, version=agent.version,
    )  # fmt: skip


def fingerprint_open_requests(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Open requests get the facts and fingerprint of their subject now, so reviewers can decide them."""
    from catalog import fingerprints

    request_model = apps.get_model("approvals", "ApprovalRequest")
    for request in request_model.objects.filter(state__in=OPEN_STATES).select_related("agent", "tool", "grant"):
        if request.grant_id:
            grant = request.grant
            tool, agent = _tool_facts(grant.tool), _agent_facts(grant.agent)
            own = fingerprints.grant_fact_set(
                environment=grant.environment, capability_names=grant.capability_names,
                credential_scope=grant.credential_scope,
            )  # fmt: skip
            facts = {**own, **tool, **agent}
            fingerprint = fingerprints.grant_fingerprint(
                own, tool_fingerprint=fingerprints.digest(tool), agent_fingerprint=fingerprints.digest(agent)
            )
        else:
            facts = _tool_facts(request.tool) if request.tool_id else _agent_facts(request.agent)
            fingerprint = fingerprints.digest(facts)
        request_model.objects.filter(pk=request.pk).update(bound_facts=facts, facts_fingerprint=fingerprint)


def _run(schema_editor, statements):  # type: ignore[no-untyped-def]
    for statement in statements:
        schema_editor.execute(statement, params=None)


def create_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        _run(schema_editor, [POSTGRES_CREATE])
    elif schema_editor.connection.vendor == "sqlite":
        _run(schema_editor, SQLITE_CREATE)


def drop_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        _run(schema_editor, [POSTGRES_DROP])
    elif schema_editor.connection.vendor == "sqlite":
        _run(schema_editor, SQLITE_DROP)


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0002_default_policies'),
        ('catalog', '0012_grant_coverage_and_hints_attestation'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='decision',
            name='reviewer_is_not_requester',
        ),
        migrations.RemoveField(
            model_name='decision',
            name='requester',
        ),
        migrations.AddField(
            model_name='approvalrequest',
            name='facts_fingerprint',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name='decision',
            name='facts_fingerprint',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(fingerprint_open_requests, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
