"""An agenda that can never double-book: 20 receptionists (threads, each with its own
database connection) booking overlapping slots at the same moment on PostgreSQL. The
exclusion constraints let exactly one win; the others get the domain error."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.utils import timezone

from clinic.models import Patient, Professional, Room
from scheduling import services
from scheduling.exceptions import SlotUnavailable
from scheduling.models import Appointment, Service
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20
SP = ZoneInfo("America/Sao_Paulo")


@pytest.fixture
def world(clinic_a):
    professionals = ProfessionalFactory.create_batch(THREADS, clinic=clinic_a)
    service = Service.objects.create(clinic=clinic_a, name="Consulta", duration_minutes=30)
    service.professionals.add(*professionals)
    day = timezone.now().astimezone(SP).date() + timedelta(days=7)
    return {
        "clinic": clinic_a,
        "service": service,
        "professionals": professionals,
        "patients": PatientFactory.create_batch(THREADS, clinic=clinic_a),
        "room": RoomFactory(clinic=clinic_a),
        "nine": datetime(day.year, day.month, day.day, 9, tzinfo=SP),
    }


def race(attempt):
    """Run ``attempt(i)`` in 20 threads released together; count wins and refusals."""
    barrier = threading.Barrier(THREADS)
    outcomes = []

    def run(i):
        try:
            barrier.wait()
            attempt(i)
            outcomes.append("booked")
        except SlotUnavailable:
            outcomes.append("refused")
        except Exception as exc:  # anything else is a bug: surface it
            outcomes.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def book(world, i, *, professional, patient, room=None, minutes=0):
    # Each thread loads its own rows through its own connection.
    services.appointment_book(
        clinic=world["clinic"],
        patient=Patient.objects.get(pk=patient.pk),
        professional=Professional.objects.get(pk=professional.pk),
        service=Service.objects.get(pk=world["service"].pk),
        room=Room.objects.get(pk=room.pk) if room else None,
        start=world["nine"] + timedelta(minutes=minutes),
    )


def test_only_one_of_20_concurrent_bookings_of_a_professional_wins(world):
    outcomes = race(
        lambda i: book(
            world, i, professional=world["professionals"][0], patient=world["patients"][i],
            minutes=i,  # overlapping, not identical
        )
    )  # fmt: skip
    assert sorted(outcomes) == ["booked"] + ["refused"] * (THREADS - 1)
    assert Appointment.objects.count() == 1


def test_only_one_of_20_concurrent_bookings_of_a_room_wins(world):
    outcomes = race(
        lambda i: book(
            world, i, professional=world["professionals"][i], patient=world["patients"][i],
            room=world["room"], minutes=i,
        )
    )  # fmt: skip
    assert sorted(outcomes) == ["booked"] + ["refused"] * (THREADS - 1)
    assert Appointment.objects.count() == 1


def test_only_one_of_20_concurrent_bookings_of_a_patient_wins(world):
    outcomes = race(
        lambda i: book(
            world, i, professional=world["professionals"][i], patient=world["patients"][0],
            minutes=i,
        )
    )  # fmt: skip
    assert sorted(outcomes) == ["booked"] + ["refused"] * (THREADS - 1)
    assert Appointment.objects.count() == 1


def test_back_to_back_concurrent_bookings_all_win(world):
    outcomes = race(
        lambda i: book(
            world, i, professional=world["professionals"][0], patient=world["patients"][i],
            minutes=30 * i,
        )
    )  # fmt: skip
    assert outcomes == ["booked"] * THREADS
    assert Appointment.objects.count() == THREADS


def test_the_database_itself_refuses_an_overlap_that_skips_the_service(world):
    """Even a write that bypasses the service's check is refused (the exclusion
    constraint), with SQLSTATE 23P01."""
    from django.db import IntegrityError, transaction

    first = services.appointment_book(
        clinic=world["clinic"],
        patient=world["patients"][0],
        professional=world["professionals"][0],
        service=world["service"],
        start=world["nine"],
    )
    twin = Appointment(
        clinic=first.clinic,
        patient=world["patients"][1],
        professional=first.professional,
        service=first.service,
        start=first.start + timedelta(minutes=10),
        end=first.end + timedelta(minutes=10),
        occupied_start=first.occupied_start + timedelta(minutes=10),
        occupied_end=first.occupied_end + timedelta(minutes=10),
    )
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        twin.save()
    assert error.value.__cause__.sqlstate == "23P01"
    assert connection.vendor == "postgresql"
