"""Encaixe: reception may deliberately book a patient over a professional's occupied time.

The row is flagged ``encaixe``, and only that flag exempts it from the professional's
exclusion constraint (migration 0002): the constraint is recreated with ``NOT encaixe`` in
its condition, so two ordinary bookings still can never overlap for a professional, while
the room and patient constraints are unchanged and hold for encaixe rows too.
"""

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.db import migrations, models
from django.db.models import Func, Q

OCCUPYING = ["scheduled", "confirmed", "arrived", "in_progress", "completed"]
NAME = "appointment_no_overlap_professional"


class OccupiedRange(Func):
    function = "TSTZRANGE"
    template = "%(function)s(%(expressions)s, '[)')"


def _professional(condition: Q) -> ExclusionConstraint:
    return ExclusionConstraint(
        name=NAME,
        expressions=[
            ("professional", RangeOperators.EQUAL),
            (OccupiedRange("occupied_start", "occupied_end"), RangeOperators.OVERLAPS),
        ],
        condition=condition,
    )


OLD = _professional(Q(status__in=OCCUPYING))
NEW = _professional(Q(status__in=OCCUPYING) & Q(encaixe=False))


def _swap(old: ExclusionConstraint, new: ExclusionConstraint):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        model = apps.get_model("scheduling", "Appointment")
        schema_editor.remove_constraint(model, old)
        schema_editor.add_constraint(model, new)

    return run


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0003_appointment_professional_start_index")]

    operations = [
        migrations.AddField(
            model_name="appointment",
            name="encaixe",
            field=models.BooleanField(
                default=False,
                help_text="Squeezed in over the professional's occupied time, deliberately.",
                verbose_name="encaixe",
            ),
        ),
        migrations.RunPython(_swap(OLD, NEW), _swap(NEW, OLD)),
    ]
