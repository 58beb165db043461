"""Load the CID-10 table (DATASUS 2008, shipped in clinic/records/data/cid10/): every
installation has it after ``migrate``. The loader is idempotent; ``manage.py load_cid10``
runs it again (e.g. after the shipped files change)."""

from django.db import migrations


def load(apps, schema_editor):
    from clinic.records.cid10 import load_cid10

    load_cid10(apps=apps)


def unload(apps, schema_editor):
    # Emptied on the way back, so that 0002's reverse can narrow the description column
    # again (DATASUS' longest description does not fit the first migration's 255).
    apps.get_model("records", "Cid10Code").objects.filter(category__isnull=False).delete()
    apps.get_model("records", "Cid10Code").objects.all().delete()
    apps.get_model("records", "Cid10Group").objects.all().delete()
    apps.get_model("records", "Cid10Chapter").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("records", "0002_cid10_search"),
    ]

    operations = [
        migrations.RunPython(load, unload),
    ]
