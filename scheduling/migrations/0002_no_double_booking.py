"""No double booking, enforced by PostgreSQL: two occupying appointments can never overlap
for the same professional, room or patient, however many bookings race.

Exclusion constraints over tstzrange(occupied_start, occupied_end, '[)') — half-open, so
back-to-back appointments are fine — with btree_gist for the equality part, only for the
statuses that occupy time. SQLite has no such constraint: there the booking service checks
inside a write transaction, and SQLite serialises writers (IMMEDIATE transactions).
A violation (SQLSTATE 23P01) becomes scheduling.exceptions.SlotUnavailable.
"""

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations
from django.db.models import Func, Q

OCCUPYING = ["scheduled", "confirmed", "arrived", "in_progress", "completed"]


class OccupiedRange(Func):
    function = "TSTZRANGE"
    template = "%(function)s(%(expressions)s, '[)')"


def _constraints():
    occupying = Q(status__in=OCCUPYING)
    occupied = (OccupiedRange("occupied_start", "occupied_end"), RangeOperators.OVERLAPS)
    return [
        ExclusionConstraint(
            name="appointment_no_overlap_professional",
            expressions=[("professional", RangeOperators.EQUAL), occupied],
            condition=occupying,
        ),
        ExclusionConstraint(
            name="appointment_no_overlap_room",
            expressions=[("room", RangeOperators.EQUAL), occupied],
            condition=occupying & Q(room__isnull=False),
        ),
        ExclusionConstraint(
            name="appointment_no_overlap_patient",
            expressions=[("patient", RangeOperators.EQUAL), occupied],
            condition=occupying,
        ),
    ]


def add_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("scheduling", "Appointment")
    for constraint in _constraints():
        schema_editor.add_constraint(model, constraint)


def remove_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("scheduling", "Appointment")
    for constraint in _constraints():
        schema_editor.remove_constraint(model, constraint)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [
        BtreeGistExtension(),  # a no-op on other databases
        migrations.RunPython(add_constraints, remove_constraints),
    ]
