"""Portal "my data": contact details edited through ``patient_update`` (name, CPF and
birth date stay with the clinic), the devices signed in, and consents per channel and
purpose with their append-only history."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from clinic import services
from clinic.choices import ConsentPurpose, ConsentSource, ConsentStatus, ContactChannel
from clinic.models import Consent, Patient
from clinic.portal import sessions
from clinic.portal.models import PortalSession
from clinic.portal.profile import device_label
from clinic.privacy import PORTAL_CONSENT_TEXT_VERSION
from integrations.models import Event
from tests.clinic.factories import ConsentFactory, PatientFactory

pytestmark = pytest.mark.django_db

PROFILE = "/portal/meus-dados/"
CONSENTS = "/portal/meus-dados/consentimentos/"

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(autouse=True)
def _english(english):
    """Every test here reads the pages in English."""


def contact_data(**overrides):
    data = {
        "phone": "(11) 97777-6666",
        "email": "maria@example.com",
        "preferred_channel": "email",
        "postal_code": "01310100",
        "street": "Avenida Paulista",
        "number": "1000",
        "complement": "ap. 12",
        "district": "Bela Vista",
        "city": "São Paulo",
        "state": "SP",
    }
    data.update(overrides)
    return data


def other_device_session(patient, user_agent=IPHONE_SAFARI) -> PortalSession:
    _token, session = sessions.session_start(patient=patient)
    PortalSession.objects.filter(pk=session.pk).update(user_agent=user_agent)
    return session


# --- Sign-in required -----------------------------------------------------------------------
@pytest.mark.parametrize("url", [PROFILE, CONSENTS])
def test_it_sends_a_visitor_who_is_not_signed_in_to_the_sign_in_page(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/entrar/")


# --- My data --------------------------------------------------------------------------------
def test_it_shows_the_name_read_only_and_says_the_clinic_changes_it(portal_a, patient_a):
    response = portal_a.get(PROFILE)
    assert response.status_code == 200
    assert response.context["nav"] == "profile"
    content = response.content.decode()
    assert "Maria José Araújo" in content
    assert "529.982.247-25" in content
    assert 'name="full_name"' not in content and 'name="cpf"' not in content
    assert "only the clinic can change them" in content
    assert 'action="/portal/sair-de-todos/"' in content


def test_it_saves_contact_details_normalised_and_publishes_patient_updated(
    portal_a, patient_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_a.post(PROFILE, contact_data())
    assert response.status_code == 302
    assert response["Location"] == PROFILE

    patient_a.refresh_from_db()
    assert patient_a.phone == "+5511977776666"
    assert patient_a.email == "maria@example.com"
    assert patient_a.preferred_channel == ContactChannel.EMAIL
    assert patient_a.postal_code == "01310-100"
    assert (patient_a.street, patient_a.number, patient_a.city, patient_a.state) == (
        "Avenida Paulista",
        "1000",
        "São Paulo",
        "SP",
    )
    assert patient_a.full_name == "Maria José Araújo"  # untouched
    event = Event.objects.get(event_type="patient.updated")
    assert event.payload["patient_id"] == patient_a.pk
    assert "phone" in event.payload["fields"] and "full_name" not in event.payload["fields"]

    page = portal_a.get(PROFILE)
    assert "Your contact details were saved." in page.content.decode()


def test_it_writes_only_the_fields_that_changed(portal_a, patient_a):
    unchanged = {
        "phone": patient_a.phone_formatted,
        "email": "",
        "preferred_channel": "whatsapp",
        "city": "Campinas",
    }
    response = portal_a.post(PROFILE, unchanged)
    assert response.status_code == 302
    event = Event.objects.get(event_type="patient.updated")
    assert event.payload["fields"] == ["city"]


def test_it_ignores_fields_a_patient_may_not_change(portal_a, patient_a):
    portal_a.post(PROFILE, contact_data(full_name="Someone Else", cpf="11144477735", notes="x"))
    patient_a.refresh_from_db()
    assert patient_a.full_name == "Maria José Araújo"
    assert patient_a.cpf == "52998224725"
    assert patient_a.notes == ""


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone": "123"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"postal_code": "0131"}, "postal_code"),
        ({"email": "", "preferred_channel": "email"}, "email"),
        ({"preferred_channel": "phone"}, "preferred_channel"),
        ({"state": "XX"}, "state"),
    ],
)
def test_it_refuses_bad_contact_details_and_writes_nothing(portal_a, patient_a, overrides, field):
    before = Patient.objects.filter(pk=patient_a.pk).values().get()
    response = portal_a.post(PROFILE, contact_data(**overrides))

    assert response.status_code == 400
    assert field in response.context["form"].errors
    content = response.content.decode()
    assert 'role="alert"' in content
    assert f'id="id_{field}-error"' in content
    assert 'class="errorlist"' in content
    if field == "preferred_channel":
        assert f'<fieldset aria-describedby="id_{field}-error">' in content
    else:
        assert 'aria-invalid="true"' in content
    assert Patient.objects.filter(pk=patient_a.pk).values().get() == before
    assert not Event.objects.filter(event_type="patient.updated").exists()


def test_an_invalid_field_points_to_its_error(portal_a):
    response = portal_a.post(PROFILE, contact_data(phone="123"))
    field = response.context["form"]["phone"]
    html = str(field)
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_phone-help id_phone-error"' in html


def test_it_lists_the_devices_signed_in_and_marks_this_one(portal_a, patient_a, patient_b):
    other_device_session(patient_a)
    ended = other_device_session(patient_a, ANDROID_CHROME)
    sessions.session_end(session=ended)
    other_device_session(patient_b, ANDROID_CHROME)  # another patient's: never shown
    idle = other_device_session(patient_a, ANDROID_CHROME)
    PortalSession.objects.filter(pk=idle.pk).update(
        last_seen_at=timezone.now() - timedelta(hours=3)
    )

    response = portal_a.get(PROFILE)
    listed = response.context["sessions"]
    assert len(listed) == 2
    assert {s.device for s in listed} == {"Safari · iPhone", device_label("")}
    assert [s.is_current for s in listed].count(True) == 1
    content = response.content.decode()
    assert "this device" in content
    assert "Chrome · Android" not in content


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (ANDROID_CHROME, "Chrome · Android"),
        (IPHONE_SAFARI, "Safari · iPhone"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Safari/537.36 Edg/126.0",
            "Edge · Windows",
        ),
        ("curl/8.5", "curl/8.5"),
        ("", "Unknown device"),
    ],
)
def test_it_names_devices_shortly(user_agent, label):
    assert device_label(user_agent) == label


def test_the_profile_page_takes_the_same_queries_with_many_sessions(
    portal_a, patient_a, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        assert portal_a.get(PROFILE).status_code == 200
    for _ in range(15):
        other_device_session(patient_a)
    with django_assert_max_num_queries(3):
        assert portal_a.get(PROFILE).status_code == 200


# --- Consents -------------------------------------------------------------------------------
def test_it_shows_the_decision_in_force_for_each_channel_and_purpose(portal_a, patient_a):
    ConsentFactory(patient=patient_a, channel="whatsapp", purpose="marketing", status="granted")
    ConsentFactory(
        patient=patient_a,
        channel="whatsapp",
        purpose="marketing",
        status="revoked",
        recorded_at=timezone.now() + timedelta(seconds=1),
    )
    response = portal_a.get(CONSENTS)
    assert response.status_code == 200
    form = response.context["form"]
    assert form["marketing__whatsapp"].initial == "revoked"
    assert form["utility__sms"].initial is None
    content = response.content.decode()
    assert "Now: no, since" in content
    assert "Now: you have not decided yet." in content
    for purpose in ("utility", "marketing", "data_sharing"):
        for channel in ("whatsapp", "sms", "email"):
            assert f'name="{purpose}__{channel}"' in content


def test_it_records_only_the_decisions_that_changed(portal_a, patient_a):
    ConsentFactory(patient=patient_a, channel="whatsapp", purpose="utility", status="granted")
    ConsentFactory(patient=patient_a, channel="sms", purpose="marketing", status="granted")
    before = Consent.objects.count()

    response = portal_a.post(
        CONSENTS,
        {
            "utility__whatsapp": "granted",  # as it was
            "marketing__sms": "revoked",  # changed
            "marketing__email": "granted",  # first decision
            # everything else left unanswered: nothing recorded
        },
    )
    assert response.status_code == 302
    assert response["Location"] == CONSENTS

    new = list(Consent.objects.filter(patient=patient_a).order_by("pk")[before:])
    assert [(c.channel, c.purpose, c.status) for c in new] == [
        ("sms", "marketing", "revoked"),
        ("email", "marketing", "granted"),
    ]
    for consent in new:
        assert consent.source == ConsentSource.PORTAL
        assert consent.legal_basis == "consent"
        assert consent.text_version == PORTAL_CONSENT_TEXT_VERSION
        assert consent.recorded_by is None

    history = portal_a.get(CONSENTS).context["history"]
    assert [(c.channel, c.purpose, c.status) for c in history][:2] == [
        ("email", "marketing", "granted"),
        ("sms", "marketing", "revoked"),
    ]
    assert len(history) == 4  # append-only: the old decisions are still there


def test_saving_the_same_choices_again_records_nothing(portal_a, patient_a):
    ConsentFactory(patient=patient_a, channel="whatsapp", purpose="utility", status="granted")
    response = portal_a.post(CONSENTS, {"utility__whatsapp": "granted"}, follow=True)
    assert Consent.objects.count() == 1
    assert "Nothing changed" in response.content.decode()


def test_an_empty_submission_records_nothing(portal_a, patient_a):
    response = portal_a.post(CONSENTS, {})
    assert response.status_code == 302
    assert not Consent.objects.exists()


def test_a_changed_consent_changes_where_messages_go(portal_a, patient_a):
    from clinic.messaging import services as messaging

    portal_a.post(CONSENTS, {"utility__sms": "granted"})
    plan = messaging.channel_plan(patient=patient_a, purpose=ConsentPurpose.UTILITY)
    assert plan.usable == [(ContactChannel.SMS, patient_a.phone)]


def test_a_bad_choice_is_refused_and_nothing_is_written(portal_a, patient_a):
    response = portal_a.post(CONSENTS, {"utility__sms": "granted", "marketing__sms": "maybe"})
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert not Consent.objects.exists()


def test_the_history_shows_only_this_patients_decisions(portal_a, patient_a, clinic_a):
    neighbour = PatientFactory(clinic=clinic_a)
    ConsentFactory(patient=neighbour, channel="email", purpose="marketing")
    ConsentFactory(patient=patient_a, channel="sms", purpose="utility")
    response = portal_a.get(CONSENTS)
    assert [c.patient_id for c in response.context["history"]] == [patient_a.pk]
    assert response.context["form"]["marketing__email"].initial is None


def test_the_history_is_paginated_newest_first(portal_a, patient_a):
    now = timezone.now()
    Consent.objects.bulk_create(
        Consent(
            clinic=patient_a.clinic,
            patient=patient_a,
            channel="sms",
            purpose="marketing",
            status="granted" if i % 2 else "revoked",
            source="reception",
            recorded_at=now - timedelta(minutes=i),
        )
        for i in range(60)
    )
    first = portal_a.get(CONSENTS).context["history"]
    assert len(first) == 50
    assert first[0].recorded_at > first[1].recorded_at
    second = portal_a.get(CONSENTS, {"page": 2})
    assert len(second.context["history"]) == 10
    assert "Page 2 of 2" in second.content.decode()


def test_the_consents_page_takes_the_same_queries_with_many_decisions(
    portal_a, patient_a, django_assert_max_num_queries
):
    ConsentFactory(patient=patient_a)
    with django_assert_max_num_queries(4):
        assert portal_a.get(CONSENTS).status_code == 200
    for i in range(80):
        services.consent_record(
            patient=patient_a,
            channel=("whatsapp", "sms", "email")[i % 3],
            purpose=("utility", "marketing", "data_sharing")[i % 3],
            status=ConsentStatus.GRANTED if i % 2 else ConsentStatus.REVOKED,
        )
    with django_assert_max_num_queries(4):
        assert portal_a.get(CONSENTS).status_code == 200
