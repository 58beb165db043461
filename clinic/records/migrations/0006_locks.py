"""The record's locks, in the database: a signed encounter or entry is never updated or
deleted, a signed encounter accepts no new entry (only corrections of its entries) nor
attachment, and inactivations, emergency accesses and attachments are append-only.

PostgreSQL only; on SQLite the models' ``save``/``delete`` and the services refuse the same
things in Python. CFM 1.638/2002 and Lei 13.787/2018 art. 4: storage must block alteration."""

from django.db import migrations

from clinic.append_only import append_only_trigger

LOCK_SQL = """
CREATE OR REPLACE FUNCTION records_signed_locked() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'finalized' THEN
        RAISE EXCEPTION '% row % is signed: % refused', TG_TABLE_NAME, OLD.id, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER records_encounter_signed_locked
    BEFORE UPDATE OR DELETE ON records_encounter
    FOR EACH ROW EXECUTE FUNCTION records_signed_locked();

CREATE TRIGGER records_entry_signed_locked
    BEFORE UPDATE OR DELETE ON records_entry
    FOR EACH ROW EXECUTE FUNCTION records_signed_locked();

CREATE OR REPLACE FUNCTION records_encounter_open() RETURNS trigger AS $$
BEGIN
    IF TG_ARGV[0] = 'correctable' THEN
        -- PL/pgSQL does not short-circuit: only the entries' trigger reads supersedes_id.
        IF NEW.supersedes_id IS NOT NULL THEN
            RETURN NEW;  -- a correction of a signed entry: allowed
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM records_encounter
               WHERE id = NEW.encounter_id AND status = 'finalized') THEN
        RAISE EXCEPTION 'encounter % is signed: no new % accepted', NEW.encounter_id, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER records_entry_encounter_open
    BEFORE INSERT ON records_entry
    FOR EACH ROW EXECUTE FUNCTION records_encounter_open('correctable');

CREATE TRIGGER records_attachment_encounter_open
    BEFORE INSERT ON records_attachment
    FOR EACH ROW EXECUTE FUNCTION records_encounter_open('');
"""

UNLOCK_SQL = """
DROP TRIGGER IF EXISTS records_attachment_encounter_open ON records_attachment;
DROP TRIGGER IF EXISTS records_entry_encounter_open ON records_entry;
DROP FUNCTION IF EXISTS records_encounter_open();
DROP TRIGGER IF EXISTS records_entry_signed_locked ON records_entry;
DROP TRIGGER IF EXISTS records_encounter_signed_locked ON records_encounter;
DROP FUNCTION IF EXISTS records_signed_locked();
"""


def lock(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LOCK_SQL, params=None)


def unlock(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNLOCK_SQL)


class Migration(migrations.Migration):
    dependencies = [("records", "0005_record")]

    operations = [
        migrations.RunPython(lock, unlock),
        append_only_trigger("records_entryinactivation"),
        append_only_trigger("records_breakglass"),
        append_only_trigger("records_attachment"),
    ]
