"""``manage.py records_verify [--clinic ID]``: check every patient's hash chain of signed
record entries and report the first broken link of each; exit status 1 if any."""

from django.core.management.base import BaseCommand, CommandError

from clinic.records.chain import chain_verify
from clinic.records.models import Entry


class Command(BaseCommand):
    help = "Verify the clinical record's hash chains; report the first broken link of each."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", type=int, help="only this clinic's chains")

    def handle(self, *args, clinic=None, **options):
        entries = Entry.objects.filter(chain_seq__isnull=False)
        if clinic is not None:
            entries = entries.filter(clinic_id=clinic)
        broken = chain_verify(clinic_id=clinic)
        for link in broken:
            self.stdout.write(
                f"BROKEN clinic={link.clinic_id} patient={link.patient_id} "
                f"entry={link.entry_id} position={link.chain_seq}: {link.reason}"
            )
        if broken:
            raise CommandError(f"{len(broken)} chain(s) broken")
        self.stdout.write(
            self.style.SUCCESS(f"{entries.count()} signed entries: every chain holds.")
        )
