"""Append-only tables on PostgreSQL: a trigger that refuses UPDATE and DELETE (consents,
the audit trail). Used by migrations, so keep it stable: a change here changes history."""

from django.db import migrations


def _sql(table: str) -> tuple[str, str]:
    create = f"""
CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_append_only();
"""
    drop = f"""
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
DROP FUNCTION IF EXISTS {table}_append_only();
"""
    return create, drop


def append_only_trigger(table: str) -> migrations.RunPython:
    """The migration operation that makes ``table`` append-only on PostgreSQL (other
    databases rely on the models' own refusal)."""
    create, drop = _sql(table)

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(create, params=None)  # no %-interpolation

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(drop)

    return migrations.RunPython(forwards, backwards)
