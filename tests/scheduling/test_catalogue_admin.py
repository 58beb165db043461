"""The agenda's catalogue in the admin: services, working hours, time off, closures, the
waitlist and calendar feeds. Clinic B's staff sees none of clinic A's rows (changelists,
URLs, FK/M2M choices, filters); forms explain what is wrong; changelists run a constant
number of queries."""

import re
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import scheduling.admin.catalogue  # noqa: F401  (registers the ModelAdmins)
from scheduling import services
from scheduling.choices import OfferStatus, Weekday
from scheduling.models import (
    CalendarFeed,
    ClinicClosure,
    Service,
    TimeOff,
    WaitlistEntry,
    WaitlistOffer,
    WorkingHours,
)
from tests.clinic.factories import PatientFactory, ProfessionalFactory, RoomFactory
from tests.scheduling.factories import (
    ClinicClosureFactory,
    ServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)

pytestmark = pytest.mark.django_db

MODELS = ["service", "workinghours", "timeoff", "clinicclosure", "waitlistentry", "calendarfeed"]


def grant(user, *codenames):
    """Scheduling permissions are not in clinic/roles.py yet: give them explicitly."""
    perms = Permission.objects.filter(content_type__app_label="scheduling", codename__in=codenames)
    assert perms.count() == len(codenames)
    user.user_permissions.add(*perms)
    return user


def grant_all(user, actions=("view", "add", "change", "delete")):
    return grant(user, *(f"{action}_{model}" for model in MODELS for action in actions))


def url(model, view="changelist", *args):
    return reverse(f"admin:scheduling_{model}_{view}", args=args)


@pytest.fixture
def client_for(client_for):
    """Clients that read English, the source strings, whatever the catalogue translates."""

    def make(user):
        client = client_for(user)
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        return client

    return make


@pytest.fixture
def staff_a(manager_a):
    return grant_all(manager_a)


@pytest.fixture
def staff_b(receptionist_b):
    return grant_all(receptionist_b)


@pytest.fixture
def people_a(clinic_a):
    return {
        "professional": ProfessionalFactory(clinic=clinic_a, full_name="Dra. Alfa Souza"),
        "room": RoomFactory(clinic=clinic_a, name="Sala Alfa"),
    }


@pytest.fixture
def people_b(clinic_b):
    return {
        "professional": ProfessionalFactory(clinic=clinic_b, full_name="Dr. Beto Lima"),
        "room": RoomFactory(clinic=clinic_b, name="Sala Beta"),
    }


@pytest.fixture
def rows_of_a(clinic_a, patient_a, people_a):
    """One row of every catalogue model, in clinic A."""
    professional, room = people_a["professional"], people_a["room"]
    service = ServiceFactory(
        clinic=clinic_a, name="Fisioterapia Alfa", professionals=[professional], rooms=[room]
    )
    entry = services.waitlist_add(
        clinic=clinic_a,
        patient=patient_a,
        service=service,
        earliest_date=date(2030, 1, 1),
        latest_date=date(2030, 1, 31),
    )
    return {
        "service": service,
        "workinghours": WorkingHoursFactory(professional=professional, room=room),
        "timeoff": TimeOffFactory(
            professional=professional, start=timezone.now() + timedelta(days=3)
        ),
        "clinicclosure": ClinicClosureFactory(
            clinic=clinic_a, end_date=timezone.localdate() + timedelta(days=10)
        ),
        "waitlistentry": entry,
        "calendarfeed": services.calendar_feed_rotate(professional=professional),
    }


@pytest.mark.parametrize("model", MODELS)
def test_it_shows_own_clinics_rows(model, rows_of_a, staff_a, client_for):
    response = client_for(staff_a).get(url(model))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [rows_of_a[model]]


@pytest.mark.parametrize("model", MODELS)
def test_own_rows_open_by_url(model, rows_of_a, staff_a, client_for):
    assert client_for(staff_a).get(url(model, "change", rows_of_a[model].pk)).status_code == 200


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("service", ["professionals", "rooms"]),
        ("workinghours", ["professional", "room"]),
        ("timeoff", ["professional", "room"]),
        ("waitlistentry", ["service", "professional"]),
        ("calendarfeed", ["professional"]),
    ],
)
def test_form_choices_are_only_the_clinics_own(
    model, fields, rows_of_a, people_a, people_b, staff_b, client_for
):
    ServiceFactory(clinic=people_b["professional"].clinic, professionals=[people_b["professional"]])
    form = client_for(staff_b).get(url(model, "add")).context["adminform"].form
    for name in fields:
        choices = list(form.fields[name].queryset)
        assert choices, name
        assert all(choice.clinic_id == people_b["professional"].clinic_id for choice in choices)
    assert "clinic" not in form.fields


def test_the_same_post_with_own_choices_creates_the_service(people_b, staff_b, client_for):
    response = client_for(staff_b).post(
        url("service", "add"),
        {
            "name": "Acupuntura",
            "category": "therapy",
            "price": "100.00",
            "is_active": "on",
            "duration_minutes": "30",
            "buffer_before_minutes": "0",
            "buffer_after_minutes": "10",
            "professionals": [people_b["professional"].pk],
            "rooms": [people_b["room"].pk],
            "min_notice_minutes": "60",
            "max_advance_days": "30",
            "cancellation_window_hours": "24",
        },
    )
    assert response.status_code == 302
    service = Service.objects.get(name="Acupuntura")
    assert service.clinic == people_b["professional"].clinic
    assert list(service.professionals.all()) == [people_b["professional"]]


@pytest.mark.parametrize("model", ["service", "workinghours", "timeoff", "waitlistentry"])
def test_related_filters_list_only_the_clinics_own(model, rows_of_a, people_b, staff_b, client_for):
    service_b = ServiceFactory(
        clinic=people_b["professional"].clinic, professionals=[people_b["professional"]]
    )
    WorkingHoursFactory(professional=people_b["professional"], room=people_b["room"])
    TimeOffFactory(professional=people_b["professional"], start=timezone.now() + timedelta(1))
    services.waitlist_add(
        clinic=service_b.clinic,
        patient=PatientFactory(clinic=service_b.clinic),
        service=service_b,
        professional=people_b["professional"],
        earliest_date=date(2030, 1, 1),
        latest_date=date(2030, 1, 2),
    )
    page = client_for(staff_b).get(url(model)).content.decode()
    assert "Dr. Beto Lima" in page  # the filter is there, with clinic B's professional
    assert "Dra. Alfa Souza" not in page
    assert "Fisioterapia Alfa" not in page


def test_the_service_form_reads_like_a_manager_thinks(staff_a, client_for):
    response = client_for(staff_a).get(url("service", "add"))
    titles = [fieldset.name for fieldset in response.context["adminform"]]
    assert titles == ["What", "Time", "Who and where", "Online booking", "Preparation"]


def test_the_service_list_shows_duration_and_price_in_reais(clinic_a, staff_a, client_for):
    ServiceFactory(clinic=clinic_a, name="Avaliação", duration_minutes=50, price="1250.00")
    page = client_for(staff_a).get(url("service"), HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    assert "50 min" in page
    assert "R$ 1.250,00" in page


# --- Working hours validation ---------------------------------------------------------------
def _hours(professional, **overrides):
    data = {
        "professional": professional.pk,
        "weekday": Weekday.MONDAY,
        "start_time": "08:00",
        "end_time": "12:00",
        "room": "",
        "valid_from": "",
        "valid_until": "",
    }
    return {**data, **overrides}


def test_working_hours_must_end_after_they_start(people_a, staff_a, client_for):
    response = client_for(staff_a).post(
        url("workinghours", "add"),
        _hours(people_a["professional"], start_time="14:00", end_time="13:00"),
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["end_time"] == [
        "The interval must end after it starts."
    ]
    assert not WorkingHours.objects.exists()


def test_overlapping_hours_of_the_same_professional_are_refused(people_a, staff_a, client_for):
    WorkingHoursFactory(professional=people_a["professional"])  # Monday 08:00–12:00
    response = client_for(staff_a).post(
        url("workinghours", "add"),
        _hours(people_a["professional"], start_time="11:00", end_time="15:00"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert len(errors) == 1
    assert "overlap" in errors[0]
    assert "08:00–12:00" in errors[0]
    assert WorkingHours.objects.count() == 1


@pytest.mark.parametrize(
    ("existing", "new", "accepted"),
    [
        ({"weekday": Weekday.TUESDAY}, {}, True),  # another day
        ({}, {"start_time": "12:00", "end_time": "18:00"}, True),  # back to back
        ({"valid_until": date(2030, 6, 30)}, {"valid_from": "2030-07-01"}, True),
        ({"valid_until": date(2030, 6, 30)}, {"valid_from": "2030-06-30"}, False),
        ({"valid_from": date(2030, 7, 1)}, {"valid_until": "2030-12-31"}, False),
        ({"valid_from": date(2031, 1, 1)}, {"valid_until": "2030-12-31"}, True),
    ],
)
def test_only_hours_that_really_intersect_are_refused(
    existing, new, accepted, people_a, staff_a, client_for
):
    WorkingHoursFactory(professional=people_a["professional"], **existing)
    response = client_for(staff_a).post(
        url("workinghours", "add"), _hours(people_a["professional"], **new)
    )
    assert (response.status_code == 302) is accepted
    assert WorkingHours.objects.count() == (2 if accepted else 1)


def test_editing_hours_does_not_clash_with_themselves(people_a, staff_a, client_for):
    hours = WorkingHoursFactory(professional=people_a["professional"])
    response = client_for(staff_a).post(
        url("workinghours", "change", hours.pk),
        _hours(people_a["professional"], end_time="13:00"),
    )
    assert response.status_code == 302
    hours.refresh_from_db()
    assert hours.end_time == time(13, 0)


def test_another_professionals_hours_do_not_clash(clinic_a, people_a, staff_a, client_for):
    WorkingHoursFactory(professional=ProfessionalFactory(clinic=clinic_a))
    response = client_for(staff_a).post(
        url("workinghours", "add"), _hours(people_a["professional"])
    )
    assert response.status_code == 302


# --- Time off -------------------------------------------------------------------------------
def test_time_off_is_entered_in_the_clinics_time_zone(clinic_a, people_a, staff_a, client_for):
    clinic_a.time_zone = "America/Manaus"  # UTC-4 (the project's default is UTC-3)
    clinic_a.save(update_fields=["time_zone"])
    response = client_for(staff_a).post(
        url("timeoff", "add"),
        {
            "professional": people_a["professional"].pk,
            "room": "",
            "start_0": "2030-03-04",
            "start_1": "08:00",
            "end_0": "2030-03-04",
            "end_1": "12:00",
            "reason": "Congresso",
        },
    )
    assert response.status_code == 302
    time_off = TimeOff.objects.get()
    assert time_off.start.astimezone(ZoneInfo("UTC")).hour == 12
    page = client_for(staff_a).get(url("timeoff", "change", time_off.pk)).content.decode()
    assert re.search(r'name="start_1" value="08:00(:00)?"', page)


def test_time_off_must_end_after_it_starts_and_name_someone(people_a, staff_a, client_for):
    response = client_for(staff_a).post(
        url("timeoff", "add"),
        {
            "professional": "",
            "room": "",
            "start_0": "2030-03-04",
            "start_1": "12:00",
            "end_0": "2030-03-04",
            "end_1": "08:00",
            "reason": "",
        },
    )
    form = response.context["adminform"].form
    assert form.errors["end"] == ["Time off must end after it starts."]
    assert form.non_field_errors() == ["Choose a professional or a room."]
    assert not TimeOff.objects.exists()


def test_time_off_lists_current_and_upcoming_first(people_a, staff_a, client_for):
    now = timezone.now()
    professional = people_a["professional"]
    past = TimeOffFactory(professional=professional, start=now - timedelta(days=30))
    later = TimeOffFactory(professional=professional, start=now + timedelta(days=20))
    sooner = TimeOffFactory(professional=professional, start=now + timedelta(days=2))
    current = TimeOffFactory(
        professional=professional, start=now - timedelta(hours=1), end=now + timedelta(hours=1)
    )
    client = client_for(staff_a)
    assert list(client.get(url("timeoff")).context["cl"].result_list) == [current, sooner, later]
    past_list = client.get(url("timeoff"), {"when": "past"}).context["cl"].result_list
    assert list(past_list) == [past]
    assert len(client.get(url("timeoff"), {"when": "all"}).context["cl"].result_list) == 4


def test_closures_must_end_on_or_after_their_first_day(staff_a, client_for):
    response = client_for(staff_a).post(
        url("clinicclosure", "add"),
        {"reason": "Feriado municipal", "start_date": "2030-05-10", "end_date": "2030-05-09"},
    )
    assert response.context["adminform"].form.errors["end_date"] == [
        "The closure must end on or after its first day."
    ]
    assert not ClinicClosure.objects.exists()


# --- Waitlist -------------------------------------------------------------------------------
def test_a_waitlist_entry_added_in_the_admin_goes_through_the_service(
    clinic_a, patient_a, rows_of_a, staff_a, client_for
):
    response = client_for(staff_a).post(
        url("waitlistentry", "add"),
        {
            "patient": patient_a.pk,
            "service": rows_of_a["service"].pk,
            "professional": "",
            "earliest_date": "2030-02-01",
            "latest_date": "2030-02-10",
            "period": "morning",
            "notes": "",
            # the read-only offers inline still sends its management form
            "offers-TOTAL_FORMS": "0",
            "offers-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    entry = WaitlistEntry.objects.exclude(pk=rows_of_a["waitlistentry"].pk).get()
    assert (entry.clinic, entry.status, entry.period) == (clinic_a, "waiting", "morning")


def test_a_waitlist_entry_shows_its_offers_read_only_without_the_claim_token(
    clinic_a, rows_of_a, people_a, staff_a, client_for
):
    entry = rows_of_a["waitlistentry"]
    start = timezone.now() + timedelta(days=5)
    offer = WaitlistOffer.objects.create(
        clinic=clinic_a,
        entry=entry,
        professional=people_a["professional"],
        start=start,
        end=start + timedelta(minutes=30),
        expires_at=timezone.now() + timedelta(minutes=30),
        status=OfferStatus.OPEN,
    )
    response = client_for(staff_a).get(url("waitlistentry", "change", entry.pk))
    (inline,) = response.context["inline_admin_formsets"]
    assert list(inline.formset.queryset) == [offer]
    assert not inline.has_add_permission and not inline.has_change_permission
    assert "Dra. Alfa Souza" in response.content.decode()
    assert offer.token not in response.content.decode()


def test_a_waitlist_professional_must_perform_the_service(
    clinic_a, patient_a, rows_of_a, staff_a, client_for
):
    other = ProfessionalFactory(clinic=clinic_a)
    response = client_for(staff_a).post(
        url("waitlistentry", "add"),
        {
            "patient": patient_a.pk,
            "service": rows_of_a["service"].pk,
            "professional": other.pk,
            "earliest_date": "2030-02-01",
            "latest_date": "2030-02-10",
            "period": "any",
            "offers-TOTAL_FORMS": "0",
            "offers-INITIAL_FORMS": "0",
        },
    )
    assert "professional" in response.context["adminform"].form.errors
    assert WaitlistEntry.objects.count() == 1


# --- Calendar feeds -------------------------------------------------------------------------
def test_the_feed_list_shows_the_absolute_private_link(rows_of_a, staff_a, client_for):
    feed = rows_of_a["calendarfeed"]
    page = client_for(staff_a).get(url("calendarfeed")).content.decode()
    assert f"http://testserver/agenda/feed/{feed.token}.ics" in page


def test_issuing_a_new_link_revokes_the_old_one(rows_of_a, staff_a, client_for):
    feed = rows_of_a["calendarfeed"]
    old = feed.token
    response = client_for(staff_a).post(
        url("calendarfeed"), {"action": "rotate", "_selected_action": [feed.pk]}
    )
    assert response.status_code == 302
    feed.refresh_from_db()
    assert feed.token != old
    assert not CalendarFeed.objects.filter(token=old).exists()


def test_the_change_page_issues_a_new_link(rows_of_a, staff_a, client_for):
    feed = rows_of_a["calendarfeed"]
    old = feed.token
    page = client_for(staff_a).get(url("calendarfeed", "change", feed.pk)).content.decode()
    assert 'name="_rotate"' in page
    assert f"/agenda/feed/{old}.ics" in page
    response = client_for(staff_a).post(url("calendarfeed", "change", feed.pk), {"_rotate": "1"})
    assert response.status_code == 302
    feed.refresh_from_db()
    assert feed.token != old


def test_a_view_only_user_cannot_issue_a_new_link(rows_of_a, receptionist_a, client_for):
    grant(receptionist_a, "view_calendarfeed")
    feed = rows_of_a["calendarfeed"]
    old = feed.token
    client = client_for(receptionist_a)
    client.post(url("calendarfeed"), {"action": "rotate", "_selected_action": [feed.pk]})
    client.post(url("calendarfeed", "change", feed.pk), {"_rotate": "1"})
    feed.refresh_from_db()
    assert feed.token == old


def test_adding_a_feed_creates_it_for_the_professional(clinic_a, staff_a, client_for):
    professional = ProfessionalFactory(clinic=clinic_a)
    response = client_for(staff_a).post(
        url("calendarfeed", "add"), {"professional": professional.pk}
    )
    assert response.status_code == 302
    feed = CalendarFeed.objects.get(professional=professional)
    assert feed.clinic == clinic_a and len(feed.token) >= 32


# --- Query counts ---------------------------------------------------------------------------
def _make(model, clinic, n):
    """``n`` rows of ``model`` in ``clinic``, each with its own related rows."""
    for _ in range(n):
        professional = ProfessionalFactory(clinic=clinic)
        room = RoomFactory(clinic=clinic)
        if model == "service":
            ServiceFactory(clinic=clinic, professionals=[professional], rooms=[room])
        elif model == "workinghours":
            WorkingHoursFactory(professional=professional, room=room)
        elif model == "timeoff":
            TimeOffFactory(
                professional=professional, room=room, start=timezone.now() + timedelta(days=1)
            )
        elif model == "clinicclosure":
            ClinicClosureFactory(clinic=clinic, end_date=timezone.localdate() + timedelta(1))
        elif model == "waitlistentry":
            service = ServiceFactory(clinic=clinic, professionals=[professional])
            services.waitlist_add(
                clinic=clinic,
                patient=PatientFactory(clinic=clinic),
                service=service,
                professional=professional,
                earliest_date=date(2030, 1, 1),
                latest_date=date(2030, 1, 2),
            )
        elif model == "calendarfeed":
            services.calendar_feed_rotate(professional=professional)


@pytest.mark.parametrize("model", MODELS)
def test_changelists_run_a_constant_number_of_queries(model, clinic_a, staff_a, client_for):
    client = client_for(staff_a)
    _make(model, clinic_a, 3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(model)).status_code == 200
    _make(model, clinic_a, 27)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url(model))
    assert response.context["cl"].result_count == 30
    assert len(few) == len(many)


@pytest.mark.parametrize("model", MODELS)
def test_changelists_of_all_clinics_run_a_constant_number_of_queries(
    model, clinic_a, clinic_b, superuser, client_for
):
    client = client_for(superuser)  # a superuser works in "all clinics": a clinic column
    _make(model, clinic_a, 3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(model)).status_code == 200
    _make(model, clinic_b, 27)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url(model))
    assert response.context["cl"].result_count == 30
    assert len(few) == len(many)


def test_a_superuser_cannot_mix_clinics_in_one_row(clinic_b, people_a, superuser, client_for):
    response = client_for(superuser).post(
        url("workinghours", "add"),
        {**_hours(people_a["professional"]), "clinic": clinic_b.pk},
    )
    assert response.status_code == 200
    assert "professional" in response.context["adminform"].form.errors
    assert not WorkingHours.objects.exists()
