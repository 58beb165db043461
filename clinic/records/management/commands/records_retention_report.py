"""``manage.py records_retention_report``: the patients whose clinical record is past the 20
years after its last entry (Lei 13.787/2018 art. 6), per clinic, for a documented review.
Nothing is deleted."""

from django.core.management.base import BaseCommand

from clinic.models import Clinic, Patient
from clinic.records.retention import records_past_retention


class Command(BaseCommand):
    help = (
        "List patients whose last clinical entry is more than 20 years old (Lei 13.787/2018 "
        "art. 6), for review. Deletes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clinic", type=int, help="Only this clinic (id).")

    def handle(self, *args, clinic=None, **options):
        clinics = Clinic.objects.order_by("pk")
        if clinic is not None:
            clinics = clinics.filter(pk=clinic)
        total = 0
        for one in clinics:
            rows = records_past_retention(one)
            if not rows:
                continue
            names = dict(
                Patient.objects.for_clinic(one)
                .filter(pk__in=[r.patient_id for r in rows])
                .values_list("pk", "full_name")
            )
            self.stdout.write(f"{one.name} (id {one.pk}): {len(rows)}")
            for row in rows:
                self.stdout.write(
                    f"  patient {row.patient_id}\t{names.get(row.patient_id, '')}\t"
                    f"last entry {row.last_entry.isoformat()}\t"
                    f"kept until {row.kept_until.isoformat()}"
                )
            total += len(rows)
        self.stdout.write(
            f"{total} record(s) past the 20-year retention period. Nothing was deleted."
        )
