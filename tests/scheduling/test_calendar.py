"""The receptionist's calendar (scheduling/admin/calendar.py): its JSON (cards, columns,
shaded time, the ETag that keeps polls cheap), moving a card, the status menu and the
booking panel — each scoped to the clinic, each through the services."""

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from clinic.models import AuditEntry, Patient
from integrations.models import Event
from scheduling.choices import AppointmentStatus, Weekday
from scheduling.models import Appointment
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.scheduling.factories import (
    AppointmentFactory,
    ClinicClosureFactory,
    ServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)

pytestmark = pytest.mark.django_db

S = AppointmentStatus
SP = ZoneInfo("America/Sao_Paulo")
MONDAY = date(2026, 3, 2)
#: Early on MONDAY, before anyone works: every time drawn is in the future.
BEFORE = datetime(2026, 3, 2, 7, tzinfo=SP)
EVENTS = reverse("admin:scheduling_calendar_events")
BOOK = reverse("admin:scheduling_calendar_book")


def at(hour, minute=0, day=MONDAY):
    return datetime.combine(day, time(hour, minute), tzinfo=SP)


def move_url(appointment):
    return reverse("admin:scheduling_calendar_move", args=[appointment.pk])


@pytest.fixture(autouse=True)
def _early_on_monday():
    with time_machine.travel(BEFORE, tick=False):
        yield


@pytest.fixture
def desk(clinic_a):
    helena = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Martins")
    igor = ProfessionalFactory(clinic=clinic_a, full_name="Dr. Igor Lima")
    for professional in (helena, igor):
        WorkingHoursFactory(
            professional=professional, weekday=Weekday.MONDAY, start_time=time(8), end_time=time(12)
        )
    consulta = ServiceFactory(
        clinic=clinic_a, name="Consulta", duration_minutes=30, professionals=[helena, igor]
    )
    return type(
        "Desk", (), {"clinic": clinic_a, "helena": helena, "igor": igor, "consulta": consulta}
    )


@pytest.fixture
def reception(receptionist_a, client_for):
    return client_for(receptionist_a)


def appointment(desk, start, professional=None, **kwargs):
    return AppointmentFactory(
        service=desk.consulta, professional=professional or desk.helena, start=start, **kwargs
    )


def events(client, day=MONDAY, **params):
    response = client.get(EVENTS, {"start": day.isoformat(), **params})
    assert response.status_code == 200, response.content
    return response.json()


def cards(payload):
    return [e for e in payload["events"] if e.get("extendedProps", {}).get("kind") == "appointment"]


def bands(payload, kind):
    return [e for e in payload["events"] if e.get("extendedProps", {}).get("kind") == kind]


# --- The JSON -------------------------------------------------------------------------------
def test_it_shows_the_days_appointments_in_one_column_per_professional(desk, reception):
    maria = appointment(
        desk, at(9), patient=PatientFactory(clinic=desk.clinic, full_name="Maria Souza")
    )
    appointment(desk, at(10), professional=desk.igor, status=S.CONFIRMED)
    appointment(desk, at(11), status=S.CANCELLED)  # its time is free again: not drawn

    payload = events(reception)

    assert [r["title"] for r in payload["resources"]] == ["Dr. Igor Lima", "Dra. Helena Martins"]
    first = next(c for c in cards(payload) if c["id"] == maria.pk)
    # The clinic's wall-clock time, without an offset: the browser's zone cannot shift it.
    assert (first["start"], first["end"]) == ("2026-03-02T09:00:00", "2026-03-02T09:30:00")
    assert first["resourceIds"] == [desk.helena.pk]
    assert first["title"] == "Maria Souza"
    props = first["extendedProps"]
    assert (props["status"], props["icon"], props["service"]) == (S.SCHEDULED, "○", "Consulta")
    assert {b["code"] for b in props["badges"]} == {"first", "unconfirmed"}
    assert "confirm" in props["actions"] and props["movable"] is True
    assert len(cards(payload)) == 2
    assert payload["count"] == 2
    assert (payload["slotMinTime"], payload["slotMaxTime"]) == ("08:00:00", "12:00:00")


def test_it_shades_hours_off_time_off_and_a_closed_day(desk, reception):
    TimeOffFactory(professional=desk.igor, start=at(10), end=at(11), reason="Curso")
    WorkingHoursFactory(
        professional=desk.helena, weekday=Weekday.MONDAY, start_time=time(14), end_time=time(18)
    )

    payload = events(reception)

    helena_off = [
        (b["start"][11:16], b["end"][11:16])
        for b in bands(payload, "off-hours")
        if b["resourceIds"] == [desk.helena.pk]
    ]
    assert helena_off == [("12:00", "14:00")]  # her lunch; the day is drawn 08:00–18:00
    [course] = bands(payload, "time-off")
    assert (course["resourceIds"], course["title"]) == ([desk.igor.pk], "Curso")

    ClinicClosureFactory(
        clinic=desk.clinic, start_date=MONDAY, end_date=MONDAY, reason="Dedetização"
    )
    closed = events(reception)
    assert closed["closed"] == {"2026-03-02": "Dedetização"}
    assert [b["title"] for b in bands(closed, "closed")] == ["Dedetização"]


def test_the_past_is_shaded_and_a_past_card_cannot_be_dragged(desk, reception):
    done = appointment(desk, at(8), status=S.CONFIRMED)
    later = appointment(desk, at(11))
    with time_machine.travel(at(9, 40), tick=False):
        payload = events(reception)

    [past] = bands(payload, "past")
    assert (past["start"][11:16], past["end"][11:16]) == ("08:00", "09:40")
    by_id = {c["id"]: c for c in cards(payload)}
    assert by_id[done.pk]["startEditable"] is False
    assert by_id[later.pk]["startEditable"] is True


def test_a_week_shows_the_professionals_asked_for(desk, reception):
    appointment(desk, at(9, day=MONDAY + timedelta(days=2)))
    appointment(desk, at(9), professional=desk.igor)

    payload = events(
        reception, end=(MONDAY + timedelta(days=7)).isoformat(), professional=[desk.helena.pk]
    )

    assert [r["id"] for r in payload["resources"]] == [desk.helena.pk]
    assert [c["start"][:10] for c in cards(payload)] == ["2026-03-04"]


def test_a_room_view_has_one_column_per_room(desk, reception):
    from tests.clinic.factories import RoomFactory

    room = RoomFactory(clinic=desk.clinic, name="Sala 1")
    appointment(desk, at(9), room=room)
    appointment(desk, at(10))

    payload = events(reception, by="room")

    assert [r["title"] for r in payload["resources"]] == ["Sala 1", "Sem sala"]
    assert sorted(str(c["resourceIds"][0]) for c in cards(payload)) == sorted(
        [str(room.pk), "none"]
    )


@pytest.mark.parametrize("by", ["professional", "room"])
def test_it_runs_a_fixed_number_of_queries_whatever_the_number_of_appointments(
    desk, reception, by, django_assert_max_num_queries
):
    for n in range(3):
        appointment(desk, at(8) + timedelta(minutes=30 * n))
    events(reception, by=by)  # warm the session and the permission cache
    with django_assert_max_num_queries(15) as few:
        assert len(cards(events(reception, by=by))) == 3
    team = [desk.helena, desk.igor, *ProfessionalFactory.create_batch(2, clinic=desk.clinic)]
    for n in range(40):  # ten back-to-back appointments each, from 09:30
        appointment(
            desk,
            at(9, 30) + timedelta(minutes=30 * (n // 4)),
            professional=team[n % 4],
            patient=PatientFactory(clinic=desk.clinic),
        )
    with django_assert_max_num_queries(15) as many:
        assert len(cards(events(reception, by=by))) == 43

    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_poll_that_finds_nothing_new_gets_304(desk, reception):
    first = reception.get(EVENTS, {"start": MONDAY.isoformat()})
    etag = first["ETag"]

    again = reception.get(EVENTS, {"start": MONDAY.isoformat()}, HTTP_IF_NONE_MATCH=etag)
    assert (again.status_code, again.content) == (304, b"")

    booked = appointment(desk, at(9))  # someone else booked (the portal, the API, a desk)
    changed = reception.get(EVENTS, {"start": MONDAY.isoformat()}, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert len(cards(changed.json())) == 1

    from scheduling import services

    with time_machine.travel(BEFORE + timedelta(seconds=1), tick=False):
        services.appointment_confirm(appointment=booked)  # a status change is news too
    confirmed = reception.get(
        EVENTS, {"start": MONDAY.isoformat()}, HTTP_IF_NONE_MATCH=changed["ETag"]
    )
    assert confirmed.status_code == 200
    assert cards(confirmed.json())[0]["extendedProps"]["status"] == S.CONFIRMED


def test_a_poll_that_finds_nothing_new_builds_nothing(
    desk, reception, django_assert_max_num_queries
):
    for n in range(10):
        appointment(desk, at(8) + timedelta(minutes=30 * n))
    etag = reception.get(EVENTS, {"start": MONDAY.isoformat()})["ETag"]
    # Session, user and permissions, then the three aggregates of calendar_version.
    with django_assert_max_num_queries(8):
        again = reception.get(EVENTS, {"start": MONDAY.isoformat()}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304


def test_it_hides_other_clinics(desk, receptionist_b, client_for):
    mine = appointment(desk, at(9))
    other = client_for(receptionist_b)

    assert cards(events(other)) == []
    assert other.post(move_url(mine), {"start": "2026-03-02T10:00"}).status_code == 404
    status = reverse("admin:scheduling_calendar_status", args=[mine.pk, "confirm"])
    assert other.post(status).status_code == 404
    found = other.get(reverse("admin:scheduling_calendar_patients"), {"q": mine.patient.full_name})
    assert found.json()["results"] == []
    mine.refresh_from_db()
    assert mine.status == S.SCHEDULED


def test_staff_without_the_view_permission_gets_403(receptionist_a, client_for):
    receptionist_a.groups.clear()
    client = client_for(receptionist_a)
    assert client.get(EVENTS).status_code == 403
    assert client.get(reverse("admin:scheduling_calendar")).status_code == 403


def test_the_page_carries_the_clinics_services_and_zone(desk, reception):
    response = reception.get(reverse("admin:scheduling_calendar"), {"date": "2026-03-02"})

    assert response.status_code == 200
    config = json.loads(
        response.content.decode()
        .split('id="cal-config" type="application/json">')[1]
        .split("</script>")[0]
    )
    assert config["date"] == "2026-03-02"
    assert config["zone"] == "America/Sao_Paulo"
    assert config["services"] == [
        {
            "id": desk.consulta.pk,
            "name": "Consulta",
            "minutes": 30,
            "professionals": sorted([desk.helena.pk, desk.igor.pk]),
        }
    ]
    assert "event-calendar.min.js" in response.content.decode()


def test_a_superuser_viewing_all_clinics_is_asked_to_choose_one(superuser, client_for):
    response = client_for(superuser).get(reverse("admin:scheduling_calendar"))
    assert (response.status_code, response.url) == (302, reverse("admin:index"))


# --- Moving a card --------------------------------------------------------------------------
def test_a_drag_to_a_free_time_moves_the_appointment(desk, reception):
    old = appointment(desk, at(9))

    response = reception.post(
        move_url(old), {"start": "2026-03-02T10:30:00", "resource": desk.igor.pk}
    )

    assert response.status_code == 200, response.content
    new = Appointment.objects.get(pk=response.json()["id"])
    assert (new.start, new.professional, new.replaces) == (at(10, 30), desk.igor, old)
    old.refresh_from_db()
    assert old.status == S.RESCHEDULED


def test_a_drag_onto_a_busy_time_is_refused_with_the_reason(desk, reception):
    moving = appointment(desk, at(9))
    appointment(desk, at(10), professional=desk.igor)

    response = reception.post(
        move_url(moving), {"start": "2026-03-02T10:15", "resource": desk.igor.pk}
    )

    assert response.status_code == 409
    body = response.json()
    assert "Dr. Igor Lima" in body["error"] and "10:30" in body["error"]
    assert body["conflicts"] == ["professional"]
    assert body["encaixe_possible"] is True
    moving.refresh_from_db()
    assert (moving.status, moving.start) == (S.SCHEDULED, at(9))


def test_a_move_to_the_past_is_refused(desk, reception):
    moving = appointment(desk, at(11))
    with time_machine.travel(at(10), tick=False):
        response = reception.post(move_url(moving), {"start": "2026-03-02T09:00"})
    assert response.status_code == 409
    assert Appointment.objects.count() == 1


def test_a_resize_changes_the_length(desk, reception):
    moving = appointment(desk, at(9))

    response = reception.post(
        move_url(moving), {"start": "2026-03-02T09:00", "end": "2026-03-02T09:50"}
    )

    assert response.status_code == 200, response.content
    new = Appointment.objects.get(pk=response.json()["id"])
    assert (new.start, new.end) == (at(9), at(9, 50))


def test_a_move_tells_the_patient_only_when_asked(desk, reception):
    quiet = appointment(desk, at(9))
    told = appointment(desk, at(10), patient=PatientFactory(clinic=desk.clinic))

    reception.post(move_url(quiet), {"start": "2026-03-02T11:00"})
    reception.post(move_url(told), {"start": "2026-03-02T11:30", "notify": "1"})

    flags = {
        e.payload["previous_appointment_id"]: e.payload["notify_patient"]
        for e in Event.objects.filter(event_type="appointment.rescheduled")
    }
    assert flags == {quiet.pk: False, told.pk: True}


def test_a_move_by_room_changes_the_room_and_keeps_the_professional(desk, reception):
    from tests.clinic.factories import RoomFactory

    room = RoomFactory(clinic=desk.clinic)
    moving = appointment(desk, at(9))

    response = reception.post(
        move_url(moving), {"start": "2026-03-02T09:00", "resource": room.pk, "by": "room"}
    )

    new = Appointment.objects.get(pk=response.json()["id"])
    assert (new.room, new.professional) == (room, desk.helena)


def test_the_status_menu_confirms_through_the_service(desk, reception):
    card = appointment(desk, at(9))

    response = reception.post(
        reverse("admin:scheduling_calendar_status", args=[card.pk, "confirm"])
    )

    assert response.status_code == 200
    card.refresh_from_db()
    assert (card.status, card.confirmed_via) == (S.CONFIRMED, "reception")
    refused = reception.post(
        reverse("admin:scheduling_calendar_status", args=[card.pk, "complete"])
    )
    assert refused.status_code == 400 and refused.json()["error"]


# --- The booking panel ----------------------------------------------------------------------
def test_the_patient_search_finds_by_name_cpf_and_phone(desk, reception, patient_a):
    url = reverse("admin:scheduling_calendar_patients")
    for term in ("maria jose", "529.982", "529982247"):
        assert [p["id"] for p in reception.get(url, {"q": term}).json()["results"]] == [
            patient_a.pk
        ], term
    phone = patient_a.phone[-8:]
    assert [p["id"] for p in reception.get(url, {"q": phone}).json()["results"]] == [patient_a.pk]
    # Enough of the CPF to tell namesakes apart, not the whole number.
    assert reception.get(url, {"q": "maria"}).json()["results"][0]["cpf"] == "***.982.247-**"


def test_the_panel_offers_the_next_free_times_from_the_clicked_one(desk, reception):
    appointment(desk, at(9))
    response = reception.get(
        reverse("admin:scheduling_calendar_times"),
        {"professional": desk.helena.pk, "service": desk.consulta.pk, "from": "2026-03-02T08:45"},
    )
    starts = [t["start"][11:16] for t in response.json()["times"]]
    assert starts[:3] == ["09:30", "09:45", "10:00"]  # 08:45 overlaps 09:00; 09:00 is taken
    assert len(starts) == 8


def test_booking_an_existing_patient(desk, reception, patient_a):
    response = reception.post(
        BOOK,
        {
            "patient": patient_a.pk,
            "professional": desk.helena.pk,
            "service": desk.consulta.pk,
            "start": "2026-03-02T09:00",
            "notes": "Trazer exames",
        },
    )

    assert response.status_code == 201, response.content
    booked = Appointment.objects.get(pk=response.json()["id"])
    assert (booked.patient, booked.start, booked.notes, booked.encaixe) == (
        patient_a,
        at(9),
        "Trazer exames",
        False,
    )


def test_booking_a_new_patient_inline_validates_the_phone_and_cpf(desk, reception):
    data = {
        "new_name": "Joana Prado",
        "new_phone": "123",
        "new_cpf": "111.111.111-11",
        "professional": desk.helena.pk,
        "service": desk.consulta.pk,
        "start": "2026-03-02T09:00",
    }

    refused = reception.post(BOOK, data)

    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"new_phone", "new_cpf"}
    assert not Patient.objects.filter(full_name="Joana Prado").exists()

    ok = reception.post(BOOK, {**data, "new_phone": "(11) 98765-4321", "new_cpf": "529.982.247-25"})
    assert ok.status_code == 201, ok.content
    joana = Patient.objects.get(full_name="Joana Prado")
    assert (joana.clinic, joana.phone) == (desk.clinic, "+5511987654321")


def test_a_refused_booking_leaves_no_new_patient_behind(desk, reception):
    appointment(desk, at(9))
    response = reception.post(
        BOOK,
        {
            "new_name": "Joana Prado",
            "new_phone": "11987654321",
            "professional": desk.helena.pk,
            "service": desk.consulta.pk,
            "start": "2026-03-02T09:00",
        },
    )
    assert response.status_code == 409
    assert not Patient.objects.filter(full_name="Joana Prado").exists()


def test_booking_in_the_past_is_refused(desk, reception, patient_a):
    with time_machine.travel(at(10), tick=False):
        response = reception.post(
            BOOK,
            {
                "patient": patient_a.pk,
                "professional": desk.helena.pk,
                "service": desk.consulta.pk,
                "start": "2026-03-02T09:00",
            },
        )
    assert response.status_code == 400
    assert "start" in response.json()["fields"]


# --- Encaixe --------------------------------------------------------------------------------
def test_an_encaixe_by_reception_succeeds_after_the_warning_and_is_audited(
    desk, reception, patient_a
):
    appointment(desk, at(9))
    data = {
        "patient": patient_a.pk,
        "professional": desk.helena.pk,
        "service": desk.consulta.pk,
        "start": "2026-03-02T09:00",
    }

    warned = reception.post(BOOK, data)
    assert warned.status_code == 409
    assert warned.json()["encaixe_possible"] is True
    assert "Dra. Helena Martins" in warned.json()["error"]

    squeezed = reception.post(BOOK, {**data, "encaixe": "1", "warning": warned.json()["error"]})

    assert squeezed.status_code == 201, squeezed.content
    booked = Appointment.objects.get(pk=squeezed.json()["id"])
    assert booked.encaixe is True
    entry = AuditEntry.objects.get(action="encaixe")
    assert (entry.object_id, entry.patient_id) == (str(booked.pk), patient_a.pk)
    assert "Dra. Helena Martins" in entry.details["warning"]
    # Drawn beside the other, flagged.
    drawn = {c["id"]: c for c in cards(events(reception))}
    assert "cal-encaixe" in drawn[booked.pk]["classNames"]
    assert {"code": "encaixe", "label": "Encaixe"} in drawn[booked.pk]["extendedProps"]["badges"]


def test_an_encaixe_still_respects_the_patient(desk, reception):
    first = appointment(desk, at(9))
    response = reception.post(
        BOOK,
        {
            "patient": first.patient.pk,
            "professional": desk.igor.pk,
            "service": desk.consulta.pk,
            "start": "2026-03-02T09:00",
            "encaixe": "1",
        },
    )
    assert response.status_code == 409
    assert response.json()["conflicts"] == ["patient"]
    assert response.json()["encaixe_possible"] is False


# --- The reception's home -------------------------------------------------------------------
def test_the_home_leads_with_today_for_reception(desk, reception):
    from scheduling import services

    waiting = appointment(
        desk, at(9), patient=PatientFactory(clinic=desk.clinic, full_name="Ana Espera")
    )
    late = appointment(
        desk,
        at(9, 30),
        professional=desk.igor,
        patient=PatientFactory(clinic=desk.clinic, full_name="Bia Atraso"),
    )
    appointment(
        desk,
        at(11),
        patient=PatientFactory(
            clinic=desk.clinic, full_name="Caio Confirma", phone="+5511987654321"
        ),
    )
    with time_machine.travel(at(9, 10), tick=False):
        services.appointment_check_in(appointment=waiting)
    with time_machine.travel(at(9, 45), tick=False):
        page = reception.get(reverse("admin:index")).content.decode()

    room = page.split('id="waiting-room"')[1].split("</section>")[0]
    assert "Ana Espera" in room and "aguardando 35 min" in room
    assert "Bia Atraso" in room and "atrasado(a) 15 min" in room
    confirm = page.split('id="confirm-title"')[1].split("</section>")[0]
    assert "Caio Confirma" in confirm
    assert "https://wa.me/5511987654321?text=" in confirm
    assert late.patient.full_name not in confirm
    # The model list is still there, behind a summary.
    assert '<details class="desk-all-sections">' in page


def test_the_home_of_another_clinic_shows_none_of_this_one(desk, receptionist_b, client_for):
    appointment(desk, at(9), patient=PatientFactory(clinic=desk.clinic, full_name="Ana Espera"))
    with time_machine.travel(at(8, 45), tick=False):
        page = client_for(receptionist_b).get(reverse("admin:index")).content.decode()
    assert "Ana Espera" not in page


def test_booking_in_another_clinics_room_is_refused(desk, reception, patient_a, clinic_b):
    from tests.clinic.factories import RoomFactory

    elsewhere = RoomFactory(clinic=clinic_b)
    response = reception.post(
        BOOK,
        {
            "patient": patient_a.pk,
            "professional": desk.helena.pk,
            "service": desk.consulta.pk,
            "start": "2026-03-02T09:00",
            "room": elsewhere.pk,
        },
    )
    assert response.status_code == 400
    assert "room" in response.json()["fields"]
    assert not Appointment.objects.exists()
