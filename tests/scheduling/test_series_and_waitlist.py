"""Recurring series (checked whole first) and the waitlist (first claim wins)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from integrations.models import Event
from scheduling import services
from scheduling.choices import AppointmentStatus, OfferStatus, WaitlistStatus
from scheduling.exceptions import OfferUnavailable, SeriesClash
from scheduling.models import Appointment, RecurrenceSeries, Service, WaitlistOffer
from tests.clinic.factories import PatientFactory, ProfessionalFactory

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")


@pytest.fixture
def desk(clinic_a):
    professional = ProfessionalFactory(clinic=clinic_a)
    service = Service.objects.create(clinic=clinic_a, name="Fisioterapia", duration_minutes=50)
    service.professionals.add(professional)
    monday = timezone.now().astimezone(SP).date()
    monday += timedelta(days=7 - monday.weekday())  # next Monday
    return {
        "clinic": clinic_a,
        "professional": professional,
        "service": service,
        "patient": PatientFactory(clinic=clinic_a),
        "first": datetime(monday.year, monday.month, monday.day, 14, tzinfo=SP),
    }


def series_args(desk, **kw):
    return {
        "clinic": desk["clinic"],
        "patient": desk["patient"],
        "professional": desk["professional"],
        "service": desk["service"],
        "first_start": desk["first"],
        **kw,
    }


def test_a_weekly_series_keeps_the_local_time(desk):
    plan = services.series_plan(**series_args(desk, occurrences=10))
    assert len(plan) == 10
    assert {o.start.astimezone(SP).strftime("%a %H:%M") for o in plan} == {"Mon 14:00"}
    assert all(o.free for o in plan)


def test_every_n_weeks_until_a_date(desk):
    until = desk["first"].date() + timedelta(weeks=6)
    plan = services.series_plan(**series_args(desk, interval_weeks=2, until=until))
    assert [o.start.date() - desk["first"].date() for o in plan] == [
        timedelta(weeks=w) for w in (0, 2, 4, 6)
    ]


def test_a_series_with_a_clash_books_nothing_unless_the_clash_is_skipped(desk):
    taken = services.appointment_book(
        clinic=desk["clinic"],
        patient=PatientFactory(clinic=desk["clinic"]),
        professional=desk["professional"],
        service=desk["service"],
        start=desk["first"] + timedelta(weeks=2),
    )
    plan = services.series_plan(**series_args(desk, occurrences=4))
    assert [o.conflicts for o in plan] == [[], [], ["professional"], []]

    with pytest.raises(SeriesClash) as error:
        services.series_book(**series_args(desk, occurrences=4))
    assert [c.start for c in error.value.clashes] == [taken.start]
    assert Appointment.objects.count() == 1
    assert RecurrenceSeries.objects.count() == 0

    series, booked = services.series_book(**series_args(desk, occurrences=4, skip=[taken.start]))
    assert len(booked) == 3
    assert {a.series for a in booked} == {series}


# --- Waitlist -------------------------------------------------------------------------------
@pytest.fixture
def freed_slot(desk, django_capture_on_commit_callbacks):
    """A booked appointment next week, and two patients waiting for that service."""
    first_waiting = services.waitlist_add(
        clinic=desk["clinic"],
        patient=PatientFactory(clinic=desk["clinic"]),
        service=desk["service"],
        earliest_date=date.today(),
        latest_date=date.today() + timedelta(days=30),
    )
    second_waiting = services.waitlist_add(
        clinic=desk["clinic"],
        patient=PatientFactory(clinic=desk["clinic"]),
        service=desk["service"],
        earliest_date=date.today(),
        latest_date=date.today() + timedelta(days=30),
        period="afternoon",
    )
    # Committed, as a real booking is (its confirmation message goes out).
    with django_capture_on_commit_callbacks(execute=True):
        appointment = services.appointment_book(
            clinic=desk["clinic"],
            patient=desk["patient"],
            professional=desk["professional"],
            service=desk["service"],
            start=desk["first"],
        )
    return appointment, first_waiting, second_waiting


def test_a_cancellation_offers_the_slot_to_the_first_in_line(
    desk, freed_slot, django_capture_on_commit_callbacks
):
    appointment, first, _second = freed_slot
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_cancel(appointment=appointment, reason="doente")
    [offer] = WaitlistOffer.objects.all()
    assert offer.entry == first
    assert offer.start == appointment.start
    first.refresh_from_db()
    assert first.status == WaitlistStatus.OFFERED
    [payload] = Event.objects.filter(event_type="waitlist.offered").values_list(
        "payload", flat=True
    )
    assert payload["offer_id"] == offer.pk


def test_offering_to_all_at_once_the_first_claim_wins(
    desk, freed_slot, django_capture_on_commit_callbacks
):
    appointment, first, second = freed_slot
    desk["clinic"].settings = {"scheduling": {"waitlist_offer_mode": "all"}}
    desk["clinic"].save(update_fields=["settings"])
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_cancel(appointment=appointment)
    offers = {o.entry_id: o for o in WaitlistOffer.objects.all()}
    assert set(offers) == {first.pk, second.pk}

    booked = services.waitlist_offer_claim(token=offers[second.pk].token)
    assert booked.patient == second.patient
    assert booked.status == AppointmentStatus.SCHEDULED
    with pytest.raises(OfferUnavailable, match=r"taken|ocupad"):
        services.waitlist_offer_claim(token=offers[first.pk].token)
    first.refresh_from_db()
    assert first.status == WaitlistStatus.WAITING  # still waiting for another slot
    assert Appointment.objects.filter(start=appointment.start).occupying().count() == 1


def test_an_offer_expires_and_goes_to_the_next_in_line(
    desk, freed_slot, django_capture_on_commit_callbacks
):
    appointment, _first, second = freed_slot
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_cancel(appointment=appointment)
    [offer] = WaitlistOffer.objects.all()
    later = timezone.now() + timedelta(minutes=31)
    with time_machine.travel(later, tick=False):
        assert services.waitlist_offers_expire() == 1
        with pytest.raises(OfferUnavailable):
            services.waitlist_offer_claim(token=offer.token)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    assert WaitlistOffer.objects.get(status=OfferStatus.OPEN).entry == second


def test_claiming_an_offer_past_its_time_expires_it_for_good(
    desk, freed_slot, django_capture_on_commit_callbacks
):
    # Regression: the "expired" write used to roll back with the error that reported it.
    appointment, first, _second = freed_slot
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_cancel(appointment=appointment)
    [offer] = WaitlistOffer.objects.all()
    with (
        time_machine.travel(offer.expires_at + timedelta(minutes=1), tick=False),
        pytest.raises(OfferUnavailable),
    ):
        services.waitlist_offer_claim(token=offer.token)
    offer.refresh_from_db()
    first.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    assert first.status == WaitlistStatus.WAITING


def test_the_same_freed_slot_is_not_offered_twice(
    desk, freed_slot, django_capture_on_commit_callbacks
):
    appointment, _first, _second = freed_slot
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_cancel(appointment=appointment)
    again = services.waitlist_offer_slot(
        clinic=desk["clinic"],
        service_id=appointment.service_id,
        professional_id=appointment.professional_id,
        room_id=None,
        start=appointment.start,
        end=appointment.end,
    )
    assert again == []
    assert WaitlistOffer.objects.count() == 1


def test_a_slot_booked_before_the_offer_is_not_offered(desk, freed_slot):
    appointment, *_ = freed_slot
    offers = services.waitlist_offer_slot(
        clinic=desk["clinic"],
        service_id=appointment.service_id,
        professional_id=appointment.professional_id,
        room_id=None,
        start=appointment.start,
        end=appointment.end,
    )
    assert offers == []  # the appointment still holds it
