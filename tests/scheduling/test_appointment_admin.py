"""The appointment admin: the changelist, booking through the add form, the read-only
change page and the bulk status actions (scheduling/admin/appointments.py)."""

import json
import re
from datetime import date, datetime, time
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.contrib.messages.constants import ERROR, SUCCESS
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduling.choices import AppointmentStatus, Channel
from scheduling.models import Appointment
from tests.clinic.factories import ProfessionalFactory, RoomFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

S = AppointmentStatus
SP = ZoneInfo("America/Sao_Paulo")
MONDAY = date(2026, 3, 2)
CHANGELIST = reverse("admin:scheduling_appointment_changelist")
ADD = reverse("admin:scheduling_appointment_add")
PERMS = ("view_appointment", "add_appointment", "change_appointment")


def at(hour, minute=0, day=MONDAY):
    return datetime.combine(day, time(hour, minute), tzinfo=SP)


def grant(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="scheduling", codename__in=codenames)
    )
    return user


def change_url(appointment):
    return reverse("admin:scheduling_appointment_change", args=[appointment.pk])


def messages_of(response):
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def desk(clinic_a):
    helena = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Helena Prado")
    room = RoomFactory(clinic=clinic_a, name="Consultório 1")
    service = ServiceFactory(clinic=clinic_a, name="Consulta", professionals=[helena])
    return SimpleNamespace(clinic=clinic_a, helena=helena, room=room, service=service)


def appointment(desk, start, **kw):
    kw.setdefault("professional", desk.helena)
    return AppointmentFactory(service=desk.service, start=start, **kw)


@pytest.fixture
def reception(receptionist_a, client_for):
    return client_for(grant(receptionist_a, *PERMS))


@pytest.fixture
def other_reception(receptionist_b, client_for):
    return client_for(grant(receptionist_b, *PERMS))


def listed(client, **params):
    return list(client.get(CHANGELIST, params).context["cl"].result_list)


# --- Changelist -----------------------------------------------------------------------------
def _many(desk, count, first=0):
    """Appointments with a professional each; the first 20 (every half hour) in the room."""
    for n in range(first, first + count):
        professional = ProfessionalFactory(clinic=desk.clinic)
        desk.service.professionals.add(professional)
        start = at(8 + n % 20 // 2, 30 * (n % 2))
        appointment(desk, start, professional=professional, room=desk.room if n < 20 else None)


def test_the_changelist_runs_the_same_queries_for_5_and_for_50_appointments(desk, reception):
    _many(desk, 5)
    reception.get(CHANGELIST)  # warm the session and the permission cache
    with CaptureQueriesContext(connection) as few:
        assert len(reception.get(CHANGELIST).context["cl"].result_list) == 5
    _many(desk, 45, first=5)
    with CaptureQueriesContext(connection) as many:
        assert len(reception.get(CHANGELIST).context["cl"].result_list) == 50

    assert len(many) == len(few)


def test_the_changelist_shows_patient_service_professional_and_status(desk, reception):
    booked = appointment(desk, at(9), room=desk.room)

    page = reception.get(CHANGELIST).content.decode()

    for text in (booked.patient.display_name, "Consulta", "Dra. Helena Prado", "Consultório 1"):
        assert text in page
    assert "02/03/2026 09:00–09:30" in page  # the clinic's local time, not UTC


@time_machine.travel(at(7), tick=False)
@pytest.mark.parametrize(
    ("day", "expected"),
    [("today", ["today"]), ("tomorrow", ["tomorrow"]), ("week", ["today", "tomorrow", "friday"])],
)
def test_it_filters_today_tomorrow_and_this_week(desk, reception, day, expected):
    rows = {
        "today": appointment(desk, at(9)),
        "tomorrow": appointment(desk, at(9, day=date(2026, 3, 3))),
        "friday": appointment(desk, at(9, day=date(2026, 3, 6))),
        "next week": appointment(desk, at(9, day=date(2026, 3, 9))),
    }

    assert listed(reception, day=day) == [rows[name] for name in expected]


def test_it_filters_by_professional_and_status(desk, reception):
    other = ProfessionalFactory(clinic=desk.clinic)
    desk.service.professionals.add(other)
    mine = appointment(desk, at(9), status=S.CONFIRMED)
    appointment(desk, at(10))
    appointment(desk, at(9), professional=other, status=S.CONFIRMED)

    assert listed(reception, professional__id__exact=desk.helena.pk, status=S.CONFIRMED) == [mine]


@pytest.mark.parametrize("term", ["maria jose", "Araújo", "529.982.247-25", "52998224725"])
def test_it_finds_appointments_by_patient_name_or_cpf(desk, reception, patient_a, term):
    hers = appointment(desk, at(9), patient=patient_a)
    appointment(desk, at(10))

    assert listed(reception, q=term) == [hers]


# --- Booking --------------------------------------------------------------------------------
def booking(desk, patient, **overrides):
    data = {
        "patient": patient.pk,
        "service": desk.service.pk,
        "professional": desk.helena.pk,
        "room": "",
        "start_0": "2026-03-02",
        "start_1": "09:00",
        "notes": "Trazer exames",
        "internal_notes": "",
    }
    data.update(overrides)
    return data


def test_the_add_form_books_through_the_service(desk, reception, receptionist_a, patient_a):
    response = reception.post(ADD, booking(desk, patient_a))

    assert response.status_code == 302, response.context["adminform"].form.errors
    booked = Appointment.objects.get()
    assert (booked.clinic, booked.patient, booked.professional) == (
        desk.clinic,
        patient_a,
        desk.helena,
    )
    assert booked.start == at(9)  # typed in the clinic's time zone
    assert booked.end == at(9, 30)  # computed by the service from the duration
    assert (booked.booked_via, booked.booked_by) == (Channel.RECEPTION, receptionist_a)
    assert booked.notes == "Trazer exames"
    assert response.url == f"{reverse('admin:scheduling_agenda')}?date=2026-03-02"


def test_booking_a_taken_slot_shows_what_clashes_and_saves_nothing(desk, reception, patient_a):
    appointment(desk, at(9, 15))

    response = reception.post(ADD, booking(desk, patient_a), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == [
        "Time slot unavailable: Dra. Helena Prado is busy from 09:15 until 09:45 "
        "(appointment 09:15–09:45)."
    ]
    assert Appointment.objects.count() == 1


def test_booking_right_after_an_appointment_says_its_buffer_keeps_the_professional_busy(
    desk, reception, patient_a
):
    desk.service.buffer_after_minutes = 10
    desk.service.save()
    appointment(desk, at(8, 30))  # 08:30–09:00, busy until 09:10

    response = reception.post(ADD, booking(desk, patient_a), HTTP_ACCEPT_LANGUAGE="en")

    assert response.context["adminform"].form.non_field_errors() == [
        "Time slot unavailable: Dra. Helena Prado is busy until 09:10 "
        "(appointment 08:30–09:00 plus 10 min buffer)."
    ]


def test_booking_names_the_room_when_the_room_clashes(desk, reception, patient_a):
    other = ProfessionalFactory(clinic=desk.clinic)
    desk.service.professionals.add(other)
    appointment(desk, at(9), professional=other, room=desk.room)

    response = reception.post(
        ADD, booking(desk, patient_a, room=desk.room.pk), HTTP_ACCEPT_LANGUAGE="en"
    )

    errors = response.context["adminform"].form.non_field_errors()
    assert errors == ["Time slot unavailable: the room is taken."]
    assert Appointment.objects.count() == 1


def test_the_add_form_refuses_a_professional_who_does_not_perform_the_service(
    desk, reception, patient_a
):
    stranger = ProfessionalFactory(clinic=desk.clinic, full_name="Dr. Igor Lima")
    ServiceFactory(clinic=desk.clinic, name="Pilates", professionals=[stranger])

    response = reception.post(
        ADD, booking(desk, patient_a, professional=stranger.pk), HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.context["adminform"].form.errors["service"] == [
        "Dr. Igor Lima does not perform Consulta. Services of Dr. Igor Lima: Pilates."
    ]
    assert not Appointment.objects.exists()


@pytest.fixture
def catalogue(desk):
    """Helena performs the consultation; Igor performs pilates; anyone the check-up."""
    igor = ProfessionalFactory(clinic=desk.clinic, full_name="Dr. Igor Lima")
    pilates = ServiceFactory(clinic=desk.clinic, name="Pilates", professionals=[igor])
    checkup = ServiceFactory(clinic=desk.clinic, name="Check-up")
    return SimpleNamespace(igor=igor, pilates=pilates, checkup=checkup)


def test_the_add_form_for_a_professional_lists_only_the_services_they_provide(
    desk, catalogue, reception
):
    response = reception.get(ADD, {"professional": desk.helena.pk})

    shown = re.findall(
        r'<option value="(\d+)"(?! hidden)[^>]*>([^<]+)</option>',
        str(response.context["adminform"].form["service"]),
    )
    assert sorted(name for _pk, name in shown) == ["Check-up", "Consulta"]
    # Pilates stays in the list, hidden, for when another professional is chosen.
    assert f'<option value="{catalogue.pilates.pk}" hidden disabled>' in response.content.decode()


def test_the_service_list_follows_the_professional_chosen_on_the_page(desk, catalogue, reception):
    page = reception.get(ADD).content.decode()

    start = page.index('id="services-by-professional"')
    data = json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])
    assert sorted(data[str(desk.helena.pk)]) == sorted([desk.service.pk, catalogue.checkup.pk])
    assert sorted(data[str(catalogue.igor.pk)]) == sorted(
        [catalogue.pilates.pk, catalogue.checkup.pk]
    )
    # The script is the project's own (no CDN), and the page keeps every service without it.
    assert '<script src="/static/scheduling/booking-form.js" defer>' in page
    assert "Pilates" in page and "Consulta" in page


# --- Change page ----------------------------------------------------------------------------
def test_the_change_page_edits_notes_but_not_time_or_people(desk, reception):
    booked = appointment(desk, at(9))
    other = ProfessionalFactory(clinic=desk.clinic)

    response = reception.post(
        change_url(booked),
        {
            "notes": "Jejum de 8 horas",
            "internal_notes": "Prefere manhã",
            "professional": other.pk,
            "start_0": "2026-03-03",
            "start_1": "15:00",
            "status": S.COMPLETED,
        },
    )

    assert response.status_code == 302
    booked.refresh_from_db()
    assert (booked.notes, booked.internal_notes) == ("Jejum de 8 horas", "Prefere manhã")
    assert (booked.professional, booked.start, booked.status) == (desk.helena, at(9), S.SCHEDULED)


def test_the_change_page_shows_the_history_and_the_allowed_changes(desk, reception):
    booked = appointment(desk, at(9), status=S.CONFIRMED, confirmed_via=Channel.WHATSAPP)

    response = reception.get(change_url(booked))

    assert response.status_code == 200
    readonly = {f for fs in response.context["adminform"] for line in fs for f in line}
    shown = {f.field["name"] for f in readonly if f.is_readonly}
    assert {"confirmed_via", "confirmed_at", "arrived_at", "cancellation_reason"} <= shown
    assert [a.name for a in response.context["status_actions"]] == ["check_in", "no_show", "cancel"]
    page = response.content.decode()
    assert reverse("admin:scheduling_appointment_transition", args=[booked.pk, "check_in"]) in page
    assert reverse("admin:scheduling_appointment_transition", args=[booked.pk, "confirm"]) not in (
        page
    )
    assert reverse("admin:scheduling_appointment_reschedule", args=[booked.pk]) in page


def test_appointments_cannot_be_deleted(desk, reception):
    booked = appointment(desk, at(9))
    delete = reverse("admin:scheduling_appointment_delete", args=[booked.pk])

    assert reception.post(delete, {"post": "yes"}).status_code == 403
    assert Appointment.objects.filter(pk=booked.pk).exists()


# --- Bulk actions ---------------------------------------------------------------------------
def act(client, action, appointments, **extra):
    return client.post(
        CHANGELIST,
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [a.pk for a in appointments], **extra},
    )


def test_a_bulk_action_reports_each_success_and_each_refusal(desk, reception, receptionist_a):
    scheduled = appointment(desk, at(9))
    done = appointment(desk, at(10), status=S.COMPLETED)
    gone = appointment(desk, at(11), status=S.CANCELLED)

    response = act(reception, "confirm_selected", [scheduled, done, gone])

    assert response.status_code == 302
    found = messages_of(response)
    assert [level for level, _ in found].count(ERROR) == 2
    assert [level for level, _ in found].count(SUCCESS) == 1
    assert any(done.patient.display_name in text for level, text in found if level == ERROR)
    assert any(scheduled.patient.display_name in t for level, t in found if level == SUCCESS)
    for row, status in ((scheduled, S.CONFIRMED), (done, S.COMPLETED), (gone, S.CANCELLED)):
        row.refresh_from_db()
        assert row.status == status
    assert scheduled.confirmed_by == receptionist_a


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        ("check_in_selected", S.CONFIRMED, S.ARRIVED),
        ("start_selected", S.ARRIVED, S.IN_PROGRESS),
        ("complete_selected", S.IN_PROGRESS, S.COMPLETED),
        ("no_show_selected", S.SCHEDULED, S.NO_SHOW),
    ],
)
def test_each_bulk_action_moves_the_status(desk, reception, action, status, expected):
    booked = appointment(desk, at(9), status=status)

    act(reception, action, [booked])

    booked.refresh_from_db()
    assert booked.status == expected


def test_bulk_cancel_asks_for_a_reason_first(desk, reception):
    booked = appointment(desk, at(9))

    asked = act(reception, "cancel_selected", [booked])
    booked.refresh_from_db()
    assert asked.status_code == 200 and booked.status == S.SCHEDULED
    assert "scheduling/admin/cancel_selected.html" in [t.name for t in asked.templates]

    act(reception, "cancel_selected", [booked], post="yes", reason="Paciente viajou")

    booked.refresh_from_db()
    assert (booked.status, booked.cancellation_reason) == (S.CANCELLED, "Paciente viajou")


def test_bulk_actions_need_the_change_permission(desk, receptionist_a, client_for):
    booked = appointment(desk, at(9))
    receptionist_a.groups.clear()  # only what is granted below
    viewer = client_for(grant(receptionist_a, "view_appointment"))

    act(viewer, "confirm_selected", [booked])

    booked.refresh_from_db()
    assert booked.status == S.SCHEDULED
