"""Encaixe: reception deliberately books a patient over a professional's occupied time. The
flag exempts the row from the professional's no-overlap constraint only; the room and the
patient still clash; nobody but reception may set it (not the portal, the API or the
assistant), and without it PostgreSQL still refuses every overlap."""

import pytest
from django.db import IntegrityError, transaction

from scheduling import services
from scheduling.choices import AppointmentStatus, Channel
from scheduling.exceptions import SchedulingError, SlotUnavailable
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, RoomFactory
from tests.scheduling.test_api import API, api_client, booking, make_agenda, post  # noqa: F401

pytestmark = pytest.mark.django_db

S = AppointmentStatus


@pytest.fixture
def agenda(clinic_a):
    agenda = make_agenda(clinic_a)
    agenda.first = services.appointment_book(
        clinic=clinic_a,
        patient=agenda.patient,
        professional=agenda.professional,
        service=agenda.service,
        start=agenda.nine,
    )
    agenda.other = PatientFactory(clinic=clinic_a)
    return agenda


def book(agenda, **kwargs):
    return services.appointment_book(
        clinic=agenda.clinic,
        professional=agenda.professional,
        service=agenda.service,
        **{"patient": agenda.other, "start": agenda.nine, **kwargs},
    )


def test_without_the_flag_an_overlap_is_refused_naming_the_clash(agenda):
    with pytest.raises(SlotUnavailable) as refused:
        book(agenda)
    assert refused.value.conflicts == ["professional"]
    assert agenda.professional.full_name in refused.value.message


def test_reception_squeezes_a_patient_in_with_the_flag(agenda):
    squeezed = book(agenda, encaixe=True)

    assert squeezed.encaixe is True
    assert Appointment.objects.occupying().filter(professional=agenda.professional).count() == 2


@pytest.mark.parametrize("channel", [Channel.PORTAL, Channel.API, Channel.WHATSAPP, Channel.SMS])
def test_nobody_but_reception_may_set_the_flag(agenda, channel):
    with pytest.raises(SchedulingError, match="encaixe"):
        book(agenda, encaixe=True, booked_via=channel)
    with pytest.raises(SchedulingError, match="encaixe"):
        book(agenda, encaixe=True, check_availability=True)
    assert Appointment.objects.count() == 1


def test_the_partner_api_cannot_book_over_an_occupied_time(agenda, api_client):  # noqa: F811
    body = {**booking(agenda), "patient": agenda.other.pk, "encaixe": True}
    response = post(api_client(agenda.clinic), f"{API}/appointments/", body)

    assert response.status_code == 409
    assert Appointment.objects.count() == 1


def test_an_encaixe_still_clashes_with_the_room_and_the_patient(agenda):
    room = RoomFactory(clinic=agenda.clinic)
    agenda.service.rooms.add(room)
    in_room = book(agenda, encaixe=True, room=room, start=agenda.nine.replace(hour=14))

    with pytest.raises(SlotUnavailable) as room_taken:
        book(
            agenda,
            encaixe=True,
            room=room,
            start=in_room.start,
            patient=PatientFactory(clinic=agenda.clinic),
        )
    assert "room" in room_taken.value.conflicts
    with pytest.raises(SlotUnavailable) as patient_busy:
        book(agenda, encaixe=True, patient=agenda.patient)
    assert patient_busy.value.conflicts == ["patient"]


def test_an_ordinary_booking_is_not_blocked_by_an_encaixe_alone(agenda):
    """The flag exempts the encaixe row from the professional's constraint: once the
    appointment it was squeezed over is cancelled, its time can be booked again."""
    book(agenda, encaixe=True)
    services.appointment_cancel(appointment=agenda.first)

    again = book(agenda, patient=PatientFactory(clinic=agenda.clinic))
    assert again.encaixe is False


@pytest.mark.postgres
def test_postgresql_refuses_an_overlap_without_the_flag(agenda):
    """The database itself, bypassing the service: only the flag lets a row overlap."""
    fields = {
        "clinic": agenda.clinic,
        "professional": agenda.professional,
        "service": agenda.service,
        "start": agenda.first.start,
        "end": agenda.first.end,
        "occupied_start": agenda.first.occupied_start,
        "occupied_end": agenda.first.occupied_end,
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(patient=agenda.other, **fields)
    squeezed = Appointment.objects.create(patient=agenda.other, encaixe=True, **fields)
    assert squeezed.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        # The patient's constraint holds for an encaixe row too.
        Appointment.objects.create(patient=agenda.patient, encaixe=True, **fields)
