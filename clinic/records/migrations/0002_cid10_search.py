"""CID-10 search: room for DATASUS' longest description (264 characters) and, on PostgreSQL,
a trigram index so that word search (``search_text LIKE '%asma%'``) reads an index instead of
the whole table. pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may
create it. ``unaccent`` is not needed: ``search_text`` is stored unaccented and queries are
unaccented the same way in Python (clinic.records.cid10.normalize), on both databases."""

from clinic.kernel.postgres import KeptTrigramExtension
from django.db import migrations, models

INDEX = "records_cid10_search_trgm"


def add_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON records_cid10code "
        "USING gin (search_text gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("records", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="cid10code",
            name="description",
            field=models.CharField(max_length=300, verbose_name="description"),
        ),
        migrations.AlterField(
            model_name="cid10code",
            name="search_text",
            field=models.CharField(db_index=True, editable=False, max_length=400),
        ),
        KeptTrigramExtension(),  # a no-op on other databases
        migrations.RunPython(add_trigram_index, drop_trigram_index),
    ]
