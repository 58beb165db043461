"""Load the CID-10 table (DATASUS 2008, shipped in clinic/records/data/cid10/): every
installation has it after ``migrate``. The loader is idempotent; ``manage.py load_cid10``
runs it again (e.g. after the shipped files change)."""

from django.db import migrations


def load(apps, schema_editor):
    from clinic.records.cid10 import load_cid10

    load_cid10(apps=apps)


class Migration(migrations.Migration):

    dependencies = [
        ("records", "0002_cid10_search"),
    ]

    operations = [
        migrations.RunPython(load, migrations.RunPython.noop),
    ]
