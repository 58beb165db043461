"""``manage.py load_cid10``: load or refresh the CID-10 table (idempotent)."""

from django.core.management.base import BaseCommand

from clinic.records.cid10 import load_cid10


class Command(BaseCommand):
    help = "Load or refresh the CID-10 table (DATASUS 2008) from clinic/records/data/cid10/."

    def handle(self, *args, **options):
        counts = load_cid10()
        self.stdout.write(
            "CID-10: {chapters} chapters, {groups} groups, {categories} categories, "
            "{subcategories} subcategories.".format(**counts)
        )
