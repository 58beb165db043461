"""Booking and the appointment status machine, through scheduling/services/."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone, translation

from integrations.models import Event
from scheduling import services
from scheduling.choices import TRANSITIONS, AppointmentStatus
from scheduling.exceptions import (
    CancellationWindowClosed,
    InvalidTransition,
    NoAppointmentToday,
    SchedulingError,
    SlotUnavailable,
)
from scheduling.models import Appointment, Service
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")
S = AppointmentStatus


@pytest.fixture
def desk(clinic_a):
    """A clinic with one professional, a room and a 30-min consultation with buffers."""
    professional = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena")
    room = RoomFactory(clinic=clinic_a, name="Consultório 1")
    service = Service.objects.create(
        clinic=clinic_a,
        name="Consulta",
        duration_minutes=30,
        buffer_before_minutes=5,
        buffer_after_minutes=10,
        price=Decimal("250.00"),
    )
    service.professionals.add(professional)
    return {"clinic": clinic_a, "professional": professional, "room": room, "service": service}


def at(day_offset, hour, minute=0):
    base = timezone.now().astimezone(SP).date() + timedelta(days=day_offset)
    return datetime(base.year, base.month, base.day, hour, minute, tzinfo=SP)


def book(desk, start, **kw):
    kw.setdefault("patient", PatientFactory(clinic=desk["clinic"]))
    kw.setdefault("professional", desk["professional"])
    return services.appointment_book(
        clinic=desk["clinic"], service=desk["service"], start=start, **kw
    )


def events_of(type_):
    return list(Event.objects.filter(event_type=type_).values_list("payload", flat=True))


def test_booking_stores_times_with_buffers_the_price_and_publishes(desk):
    appointment = book(desk, at(3, 9))
    assert appointment.end - appointment.start == timedelta(minutes=30)
    assert appointment.occupied_start == appointment.start - timedelta(minutes=5)
    assert appointment.occupied_end == appointment.end + timedelta(minutes=10)
    assert appointment.price == Decimal("250.00")
    assert appointment.status == S.SCHEDULED
    [payload] = events_of("appointment.booked")
    assert payload["appointment_id"] == appointment.pk
    assert "full_name" not in str(payload)  # ids only, no personal data


def test_it_refuses_an_overlap_and_names_what_clashes(desk):
    book(desk, at(3, 9))
    with pytest.raises(SlotUnavailable) as error:
        book(desk, at(3, 9, 20))
    assert error.value.conflicts == ["professional"]
    assert error.value.status_code == 409
    assert Appointment.objects.count() == 1


def test_buffers_count_but_back_to_back_with_buffers_is_fine(desk):
    book(desk, at(3, 9))  # occupies 08:55 – 09:40
    with pytest.raises(SlotUnavailable):
        book(desk, at(3, 9, 35))  # its buffer before starts at 09:30
    assert book(desk, at(3, 9, 45)).occupied_start == at(3, 9, 40)


def test_a_refusal_says_until_when_the_professional_is_busy_and_why(desk):
    desk["service"].buffer_before_minutes = 0
    desk["service"].save()
    book(desk, at(3, 10))  # 10:00–10:30, then 10 minutes' buffer
    with translation.override("en"), pytest.raises(SlotUnavailable) as error:
        book(desk, at(3, 10, 30))
    assert error.value.message == (
        "Time slot unavailable: Dra. Helena is busy until 10:40 "
        "(appointment 10:00–10:30 plus 10 min buffer)."
    )


def test_a_refusal_names_the_later_appointment_it_runs_into(desk):
    book(desk, at(3, 10))  # occupies 09:55–10:40
    with translation.override("en"), pytest.raises(SlotUnavailable) as error:
        book(desk, at(3, 9, 30))  # would run until 10:10
    assert error.value.message == (
        "Time slot unavailable: Dra. Helena is busy from 09:55 until 10:40 "
        "(appointment 10:00–10:30 plus 5 min buffer before and 10 after)."
    )


def test_the_refusal_reads_in_portuguese_by_default(desk):
    desk["service"].buffer_before_minutes = 0
    desk["service"].save()
    book(desk, at(3, 10))
    with pytest.raises(SlotUnavailable) as error:
        book(desk, at(3, 10, 30))
    assert "a agenda de Dra. Helena está ocupada até 10:40" in error.value.message


def test_the_same_patient_cannot_be_in_two_places(desk, clinic_a):
    other = ProfessionalFactory(clinic=clinic_a)
    desk["service"].professionals.add(other)
    first = book(desk, at(3, 9))
    with pytest.raises(SlotUnavailable) as error:
        book(desk, at(3, 9), professional=other, patient=first.patient)
    assert error.value.conflicts == ["patient"]


def test_a_room_is_not_shared(desk, clinic_a):
    other = ProfessionalFactory(clinic=clinic_a)
    desk["service"].professionals.add(other)
    book(desk, at(3, 9), room=desk["room"])
    with pytest.raises(SlotUnavailable) as error:
        book(desk, at(3, 9), professional=other, room=desk["room"])
    assert error.value.conflicts == ["room"]


def test_a_service_with_rooms_gets_a_free_one(desk, clinic_a):
    second_room = RoomFactory(clinic=clinic_a, name="Consultório 2")
    desk["service"].rooms.add(desk["room"], second_room)
    other = ProfessionalFactory(clinic=clinic_a)
    desk["service"].professionals.add(other)
    assert book(desk, at(3, 9)).room == desk["room"]
    assert book(desk, at(3, 9), professional=other).room == second_room


def test_a_cancelled_appointment_frees_its_slot(desk):
    first = book(desk, at(3, 9))
    services.appointment_cancel(appointment=first, reason="viagem")
    assert book(desk, at(3, 9)).status == S.SCHEDULED
    [freed] = events_of("slot.freed")
    assert freed["appointment_id"] == first.pk


def test_it_refuses_a_professional_who_does_not_perform_the_service(desk, clinic_a):
    outsider = ProfessionalFactory(clinic=clinic_a)
    with pytest.raises(SchedulingError):
        book(desk, at(3, 9), professional=outsider)


def test_it_refuses_rows_of_another_clinic(desk, clinic_b):
    with pytest.raises(SchedulingError):
        book(desk, at(3, 9), patient=PatientFactory(clinic=clinic_b))
    assert Appointment.objects.count() == 0


# --- The status machine ---------------------------------------------------------------------
ACTIONS = {
    S.CONFIRMED: lambda a: services.appointment_confirm(appointment=a, via="whatsapp"),
    S.ARRIVED: lambda a: services.appointment_check_in(appointment=a),
    S.IN_PROGRESS: lambda a: services.appointment_start(appointment=a),
    S.COMPLETED: lambda a: services.appointment_complete(appointment=a),
    S.NO_SHOW: lambda a: services.appointment_mark_no_show(appointment=a),
    S.CANCELLED: lambda a: services.appointment_cancel(appointment=a, reason="x"),
    S.RESCHEDULED: lambda a: services.appointment_reschedule(
        appointment=a, start=a.start + timedelta(days=1)
    ),
}
EVENT_OF = {
    S.CONFIRMED: "appointment.confirmed",
    S.ARRIVED: "appointment.checked_in",
    S.IN_PROGRESS: "appointment.started",
    S.COMPLETED: "appointment.completed",
    S.NO_SHOW: "appointment.no_show",
    S.CANCELLED: "appointment.cancelled",
    S.RESCHEDULED: "appointment.rescheduled",
}


def in_status(desk, status):
    appointment = book(desk, at(3, 9))
    Appointment.objects.filter(pk=appointment.pk).update(status=status)
    appointment.refresh_from_db()
    return appointment


ALL_PAIRS = [(a, b) for a in S.values for b in ACTIONS]


@pytest.mark.parametrize(("current", "wanted"), ALL_PAIRS)
def test_every_transition_is_allowed_or_refused_as_declared(desk, current, wanted):
    appointment = in_status(desk, current)
    before = Event.objects.count()
    if wanted in TRANSITIONS[current]:
        ACTIONS[wanted](appointment)
        appointment.refresh_from_db()
        assert appointment.status == wanted
        assert Event.objects.filter(event_type=EVENT_OF[wanted]).count() == 1
    else:
        with pytest.raises(InvalidTransition):
            ACTIONS[wanted](appointment)
        appointment.refresh_from_db()
        assert appointment.status == current
        assert Event.objects.count() == before


def test_confirmation_records_who_and_how(desk, receptionist_a):
    appointment = book(desk, at(3, 9))
    services.appointment_confirm(appointment=appointment, via="sms", by=receptionist_a)
    appointment.refresh_from_db()
    assert (appointment.confirmed_via, appointment.confirmed_by) == ("sms", receptionist_a)
    assert appointment.confirmed_at is not None


def test_a_no_show_counts_on_the_patients_record(desk):
    appointment = book(desk, at(3, 9))
    services.appointment_mark_no_show(appointment=appointment)
    appointment.patient.refresh_from_db()
    assert appointment.patient.no_show_count == 1


def test_a_late_cancellation_is_flagged_and_refused_online(desk):
    soon = book(desk, timezone.now() + timedelta(hours=3))
    with pytest.raises(CancellationWindowClosed):
        services.appointment_cancel(appointment=soon, via="portal", enforce_window=True)
    soon.refresh_from_db()
    assert soon.status == S.SCHEDULED
    services.appointment_cancel(appointment=soon, via="reception", reason="ligou")
    soon.refresh_from_db()
    assert soon.late_cancellation is True
    later = book(desk, at(5, 10))
    services.appointment_cancel(appointment=later, via="portal", enforce_window=True)
    later.refresh_from_db()
    assert later.late_cancellation is False


def test_rescheduling_links_the_new_appointment_and_frees_the_old_slot(desk):
    old = book(desk, at(3, 9))
    new = services.appointment_reschedule(appointment=old, start=at(3, 9, 15))  # overlaps old
    old.refresh_from_db()
    assert old.status == S.RESCHEDULED
    assert new.replaces == old
    assert new.status == S.SCHEDULED
    [moved] = events_of("appointment.rescheduled")
    assert moved["previous_appointment_id"] == old.pk
    assert events_of("slot.freed")[0]["appointment_id"] == old.pk


def test_a_failed_reschedule_changes_nothing(desk):
    old = book(desk, at(3, 9))
    blocker = book(desk, at(4, 9))
    with pytest.raises(SlotUnavailable):
        services.appointment_reschedule(appointment=old, start=blocker.start)
    old.refresh_from_db()
    assert old.status == S.SCHEDULED
    assert Appointment.objects.count() == 2


# --- Check-in -------------------------------------------------------------------------------
def test_check_in_by_qr_token_moves_todays_appointment_to_arrived(desk):
    with time_machine.travel(at(0, 8), tick=False):
        today = book(desk, at(0, 10))
        services.appointment_check_in_by_token(
            clinic=desk["clinic"], token=today.patient.checkin_token
        )
    today.refresh_from_db()
    assert today.status == S.ARRIVED


def test_check_in_refuses_unknown_rotated_and_other_clinics_tokens(desk, clinic_b):
    from clinic.services import patient_rotate_checkin_token

    with time_machine.travel(at(0, 8), tick=False):
        today = book(desk, at(0, 10))
        old = today.patient.checkin_token
        patient_rotate_checkin_token(patient=today.patient)
        attempts = [
            (desk["clinic"], old),
            (desk["clinic"], "nope"),
            (clinic_b, today.patient.checkin_token),
        ]
        for clinic, token in attempts:
            with pytest.raises(NoAppointmentToday):
                services.appointment_check_in_by_token(clinic=clinic, token=token)
    today.refresh_from_db()
    assert today.status == S.SCHEDULED


def test_check_in_does_not_take_tomorrows_appointment(desk):
    with time_machine.travel(at(0, 8), tick=False):
        tomorrow = book(desk, at(1, 10))
        with pytest.raises(NoAppointmentToday):
            services.appointment_check_in_by_token(
                clinic=desk["clinic"], token=tomorrow.patient.checkin_token
            )
