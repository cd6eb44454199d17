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
        migrations.RunPython(create_triggers, drop_triggers),
    ]
