"""Privacy (LGPD) on the portal and in the admin: "download my data" (JSON and a printable
page, each download recorded), the deletion request (once, with ``privacy.requested``),
and the clinic's side — anonymise contact and marketing data or refuse — scoped to the
clinic."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic import privacy, services
from clinic.audit import audit_record
from clinic.choices import ConsentPurpose, ConsentSource, ConsentStatus, ContactChannel
from clinic.messaging.models import OutboundMessage, ReceivedMessage
from clinic.models import Consent, PrivacyRequest
from clinic.portal import sessions
from clinic.portal.models import PortalSession
from integrations.models import Event
from tests.clinic.factories import ConsentFactory, PatientFactory

pytestmark = pytest.mark.django_db

PRIVACY = "/portal/meus-dados/privacidade/"
EXPORT_JSON = "/portal/meus-dados/privacidade/meus-dados.json"
EXPORT_HTML = "/portal/meus-dados/privacidade/meus-dados.html"


@pytest.fixture(autouse=True)
def _english(english):
    """Every test here reads the pages in English."""


def outbound(patient, n=0, **fields):
    return OutboundMessage.objects.create(
        clinic=patient.clinic,
        patient=patient,
        template="lembrete_consulta",
        purpose=ConsentPurpose.UTILITY,
        idempotency_key=f"test:{patient.pk}:{n}:{timezone.now().timestamp()}",
        channel=ContactChannel.WHATSAPP,
        to_address=patient.phone,
        body=fields.pop("body", f"Olá! Lembrete {n}."),
        **fields,
    )


def received(patient, n=0, text="Confirmo"):
    return ReceivedMessage.objects.create(
        clinic=patient.clinic,
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        from_address=patient.phone,
        sender_name="Maria",
        text=text,
        source_key=f"test:{patient.pk}:{n}",
    )


@pytest.fixture
def maria(patient_a):
    """Patient A with health data, reception notes, consents and messages."""
    services.patient_update(
        patient=patient_a,
        email="maria@example.com",
        allergies="Dipirona",
        notes="Prefere horários pela manhã",
        city="Campinas",
    )
    ConsentFactory(patient=patient_a, channel="whatsapp", purpose="utility")
    outbound(patient_a, body="Olá Maria, sua consulta é amanhã.")
    received(patient_a, text="Confirmo, obrigada")
    return patient_a


# --- Sign-in required -----------------------------------------------------------------------
@pytest.mark.parametrize("url", [PRIVACY, EXPORT_JSON, EXPORT_HTML])
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_sends_a_visitor_who_is_not_signed_in_to_the_sign_in_page(url, method):
    response = getattr(Client(), method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/entrar/")
    assert not PrivacyRequest.objects.exists()


# --- The page -------------------------------------------------------------------------------
def test_it_explains_the_rights_and_the_20_years_rule(portal_a):
    response = portal_a.get(PRIVACY)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Lei 13.709/2018" in content
    assert "Lei 13.787/2018" in content
    assert "20 years" in content
    assert f'action="{EXPORT_JSON}"' in content
    assert f'action="{EXPORT_HTML}"' in content


# --- Export ---------------------------------------------------------------------------------
def test_the_json_export_holds_the_patients_data_and_is_recorded(portal_a, maria):
    response = portal_a.post(EXPORT_JSON)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="meus-dados-')
    data = json.loads(response.content)

    record = data["sections"]["patient"]
    assert record["full_name"] == "Maria José Araújo"
    assert record["cpf"] == "529.982.247-25"
    assert record["email"] == "maria@example.com"
    assert record["allergies"] == "Dipirona"
    assert record["reception_notes"] == "Prefere horários pela manhã"
    assert "checkin_token" not in record and maria.checkin_token not in response.content.decode()
    assert "search_name" not in record
    assert data["sections"]["consents"][0]["channel"] == "WhatsApp"
    assert data["sections"]["messages_sent"][0]["text"] == "Olá Maria, sua consulta é amanhã."
    assert data["sections"]["messages_received"][0]["text"] == "Confirmo, obrigada"
    assert len(data["sections"]["portal_sessions"]) == 1
    assert data["clinic"]["name"] == "Clínica Alfa"
    assert data["titles"]["patient"] == "Your record"

    request = PrivacyRequest.objects.get()
    assert (request.patient, request.kind, request.status) == (
        maria,
        PrivacyRequest.Kind.EXPORT,
        PrivacyRequest.Status.DONE,
    )
    assert request.handled_at is not None


def test_every_registered_section_is_in_the_export(portal_a, maria):
    data = json.loads(portal_a.post(EXPORT_JSON).content)
    assert list(data["sections"]) == [s.key for s in privacy.export_sections()]


def test_the_export_never_holds_another_patients_data(portal_a, maria, clinic_a, patient_b):
    neighbour = PatientFactory(clinic=clinic_a, full_name="Vizinho Souza", email="v@example.com")
    for other in (neighbour, patient_b):
        ConsentFactory(patient=other, channel="email", purpose="marketing")
        outbound(other, body=f"Mensagem secreta de {other.full_name}")
        received(other, text=f"Resposta secreta de {other.full_name}")
        PrivacyRequest.objects.create(
            clinic=other.clinic, patient=other, kind="deletion", details="segredo do outro"
        )
        sessions.session_start(patient=other)

    for url in (EXPORT_JSON, EXPORT_HTML):
        content = portal_a.post(url).content.decode()
        for other in (neighbour, patient_b):
            assert other.full_name not in content
            assert "secreta" not in content
            assert "segredo do outro" not in content
            assert other.cpf_formatted not in content
    data = json.loads(portal_a.post(EXPORT_JSON).content)
    assert len(data["sections"]["consents"]) == 1
    assert len(data["sections"]["portal_sessions"]) == 1


def test_naming_another_patient_in_the_export_address_gets_nothing_of_theirs(
    portal_a, maria, patient_b
):
    """The address names no patient; one smuggled into it is ignored, never obeyed."""
    for query in (
        f"?patient={patient_b.pk}",
        f"?patient_id={patient_b.pk}&clinic={patient_b.clinic_id}",
    ):
        for url in (EXPORT_JSON, EXPORT_HTML):
            content = portal_a.post(url + query, {"patient": patient_b.pk}).content.decode()
            assert patient_b.full_name not in content
            assert maria.full_name in content


def test_a_get_on_the_download_address_records_nothing(portal_a):
    for url in (EXPORT_JSON, EXPORT_HTML):
        response = portal_a.get(url)
        assert response.status_code == 302
        assert response["Location"] == PRIVACY
    assert not PrivacyRequest.objects.exists()


def test_the_readable_export_renders_every_section_and_is_recorded(portal_a, maria):
    response = portal_a.post(EXPORT_HTML)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Data held about Maria José Araújo" in content
    for section in privacy.export_sections():
        assert f'id="section-{section.key}"' in content
    assert "Dipirona" in content
    assert "Olá Maria, sua consulta é amanhã." in content
    assert "Allergies" in content  # labelled, not "allergies"
    assert "Save as PDF" in content
    assert PrivacyRequest.objects.get().kind == PrivacyRequest.Kind.EXPORT


def test_the_export_takes_the_same_queries_with_many_rows(
    portal_a, maria, django_assert_max_num_queries
):
    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert portal_a.post(EXPORT_JSON).status_code == 200
        return len(captured)

    few = count()
    for i in range(30):
        outbound(maria, n=i + 1)
        received(maria, n=i + 1)
        ConsentFactory(patient=maria, channel="sms", purpose="marketing")
        sessions.session_start(patient=maria)
    assert count() == few
    with django_assert_max_num_queries(few):
        assert portal_a.post(EXPORT_HTML).status_code == 200


# --- Deletion request -----------------------------------------------------------------------
def test_a_deletion_request_is_recorded_once_and_published(
    portal_a, patient_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_a.post(PRIVACY, {"details": "Não quero mais receber nada."})
    assert response.status_code == 302
    assert response["Location"] == PRIVACY
    request = PrivacyRequest.objects.get()
    assert (request.patient, request.kind, request.status) == (
        patient_a,
        PrivacyRequest.Kind.DELETION,
        PrivacyRequest.Status.OPEN,
    )
    assert request.details == "Não quero mais receber nada."
    event = Event.objects.get(event_type="privacy.requested")
    assert event.clinic_id == patient_a.clinic_id
    assert event.payload == {
        "privacy_request_id": request.pk,
        "patient_id": patient_a.pk,
        "kind": "deletion",
    }

    page = portal_a.get(PRIVACY).content.decode()
    assert "The clinic is handling your request" in page
    assert 'name="details"' not in page  # no second form while one is open

    again = portal_a.post(PRIVACY, {"details": "de novo"})
    assert again.status_code == 409
    assert "already have a deletion request" in again.content.decode()
    assert PrivacyRequest.objects.count() == 1
    assert Event.objects.filter(event_type="privacy.requested").count() == 1


def test_a_new_deletion_request_is_allowed_once_the_last_one_was_handled(portal_a, patient_a):
    first = privacy.privacy_request_create(patient=patient_a, kind="deletion")
    privacy.privacy_request_refuse(request=first, by=None, resolution="Há cobrança em aberto.")
    assert portal_a.post(PRIVACY, {"details": ""}).status_code == 302
    assert PrivacyRequest.objects.filter(status="open").count() == 1


def test_a_too_long_text_is_refused_and_nothing_is_written(portal_a):
    response = portal_a.post(PRIVACY, {"details": "x" * 2001})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
    assert not PrivacyRequest.objects.exists()


def test_a_patient_sees_only_their_own_requests(portal_client_for, patient_a, patient_b, clinic_a):
    neighbour = PatientFactory(clinic=clinic_a)
    privacy.privacy_request_create(patient=patient_a, kind="deletion", details="pedido da Maria")
    for other in (neighbour, patient_b):
        response = portal_client_for(other).get(PRIVACY)
        assert response.context["requests"] == []
        assert response.context["open_deletion"] is None
        assert "pedido da Maria" not in response.content.decode()
        # …and may make their own.
        assert portal_client_for(other).post(PRIVACY, {}).status_code == 302


def test_the_privacy_page_takes_the_same_queries_with_many_requests(
    portal_a, patient_a, django_assert_max_num_queries
):
    # The session, the requests, the open deletion request, the accesses to the data.
    privacy.privacy_export_record(patient=patient_a, file_format="json")
    with django_assert_max_num_queries(4):
        assert portal_a.get(PRIVACY).status_code == 200
    for _ in range(40):
        privacy.privacy_export_record(patient=patient_a, file_format="json")
        audit_record(
            clinic=patient_a.clinic_id, action="view", actor_kind="staff", patient=patient_a
        )
    privacy.privacy_request_create(patient=patient_a, kind="deletion")
    with django_assert_max_num_queries(4):
        assert portal_a.get(PRIVACY).status_code == 200


# --- Anonymisation and refusal (services) ---------------------------------------------------
@pytest.fixture
def asked(maria):
    """Maria, with marketing consents, two portal sessions and an open deletion request."""
    services.patient_update(
        patient=maria,
        postal_code="13010-000",
        street="Rua A",
        number="1",
        district="Centro",
        state="SP",
        lead_source="Instagram",
        birth_date=timezone.localdate().replace(year=1980),
        social_name="Mari",
    )
    for channel in ("whatsapp", "email"):
        ConsentFactory(patient=maria, channel=channel, purpose="marketing")
    ConsentFactory(patient=maria, channel="sms", purpose="data_sharing")
    ConsentFactory(patient=maria, channel="sms", purpose="marketing", status="revoked")
    sessions.session_start(patient=maria)
    sessions.session_start(patient=maria)
    return privacy.privacy_request_create(patient=maria, kind="deletion")


def test_anonymising_erases_contact_and_marketing_data_and_keeps_the_record(
    asked, maria, manager_a, django_capture_on_commit_callbacks
):
    old_token = maria.checkin_token
    consents_before = Consent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        closed = privacy.patient_anonymise(patient=maria, by=manager_a)

    maria.refresh_from_db()
    for field in privacy.ANONYMISED_FIELDS:
        assert getattr(maria, field) == "", field
    # The clinical record and its identification stay (Lei 13.787/2018).
    assert maria.full_name == "Maria José Araújo"
    assert maria.social_name == "Mari"
    assert maria.cpf == "52998224725"
    assert maria.birth_date is not None
    assert maria.allergies == "Dipirona"
    assert maria.checkin_token != old_token

    revocations = list(Consent.objects.order_by("pk")[consents_before:])
    assert {(c.channel, c.purpose) for c in revocations} == {
        ("whatsapp", "marketing"),
        ("email", "marketing"),
        ("sms", "data_sharing"),
    }
    for consent in revocations:
        assert consent.status == ConsentStatus.REVOKED
        assert consent.source == ConsentSource.RECEPTION
        assert consent.recorded_by == manager_a
    in_force = privacy.consents_in_force(patient=maria)
    assert in_force[("whatsapp", "utility")].status == ConsentStatus.GRANTED  # untouched

    assert not PortalSession.objects.filter(patient=maria, ended_at__isnull=True).exists()
    assert not OutboundMessage.objects.filter(patient=maria).exclude(to_address="").exists()
    assert not ReceivedMessage.objects.filter(patient=maria).exclude(from_address="").exists()
    assert OutboundMessage.objects.get(patient=maria).body  # what was said is kept

    assert closed == asked
    asked.refresh_from_db()
    assert asked.status == PrivacyRequest.Status.DONE
    assert asked.handled_by == manager_a
    assert asked.handled_at is not None
    assert "13.787/2018" in asked.resolution

    anonymised = Event.objects.get(event_type="patient.anonymised")
    assert anonymised.payload == {"patient_id": maria.pk, "privacy_request_id": asked.pk}
    assert Event.objects.filter(event_type="patient.updated", payload__patient_id=maria.pk)


def test_anonymising_touches_no_other_patient(asked, maria, clinic_a, manager_a):
    neighbour = PatientFactory(clinic=clinic_a, email="v@example.com")
    ConsentFactory(patient=neighbour, channel="email", purpose="marketing")
    _token, session = sessions.session_start(patient=neighbour)
    message = outbound(neighbour)
    privacy.patient_anonymise(patient=maria, by=manager_a)
    neighbour.refresh_from_db()
    assert neighbour.email == "v@example.com" and neighbour.phone
    assert privacy.consents_in_force(patient=neighbour)[("email", "marketing")].status == "granted"
    session.refresh_from_db()
    assert session.ended_at is None
    message.refresh_from_db()
    assert message.to_address == neighbour.phone


def test_anonymising_with_no_open_request_closes_nothing(maria, manager_a):
    assert privacy.patient_anonymise(patient=maria, by=manager_a) is None
    maria.refresh_from_db()
    assert maria.phone == ""


def test_an_anonymised_patient_is_signed_out(asked, maria, portal_client_for, manager_a):
    client = portal_client_for(maria)
    privacy.patient_anonymise(patient=maria, by=manager_a)
    response = client.get(PRIVACY)
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/entrar/")


def test_refusing_needs_a_reason_and_happens_once(asked, manager_a):
    with pytest.raises(privacy.PrivacyError):
        privacy.privacy_request_refuse(request=asked, by=manager_a, resolution="  ")
    privacy.privacy_request_refuse(
        request=asked, by=manager_a, resolution="Há um débito em cobrança judicial."
    )
    asked.refresh_from_db()
    assert asked.status == PrivacyRequest.Status.REFUSED
    assert asked.handled_by == manager_a
    assert asked.resolution == "Há um débito em cobrança judicial."
    with pytest.raises(privacy.PrivacyError):
        privacy.privacy_request_refuse(request=asked, by=manager_a, resolution="de novo")


def test_the_patient_reads_the_clinics_answer(asked, maria, manager_a, portal_client_for):
    privacy.privacy_request_refuse(request=asked, by=manager_a, resolution="Motivo explicado.")
    content = portal_client_for(maria).get(PRIVACY).content.decode()
    assert "Motivo explicado." in content
    assert "Refused" in content


# --- Admin ----------------------------------------------------------------------------------
def change_url(request):
    return reverse("admin:clinic_privacyrequest_change", args=[request.pk])


@pytest.fixture
def request_of_b(patient_b):
    return privacy.privacy_request_create(patient=patient_b, kind="deletion")


def test_a_manager_sees_only_their_clinics_requests(asked, request_of_b, manager_a, client_for):
    client = client_for(manager_a)
    response = client.get(reverse("admin:clinic_privacyrequest_changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [asked]
    assert client.get(change_url(asked)).status_code == 200
    assert client.get(change_url(request_of_b)).status_code == 404


def test_the_changelist_searches_by_cpf_and_filters_by_kind(asked, maria, manager_a, client_for):
    privacy.privacy_export_record(patient=maria, file_format="json")
    PatientFactory(clinic=maria.clinic, full_name="Outra Pessoa")
    client = client_for(manager_a)
    url = reverse("admin:clinic_privacyrequest_changelist")
    found = client.get(url, {"q": "529.982.247-25", "kind__exact": "deletion"})
    assert list(found.context["cl"].result_list) == [asked]
    by_name = client.get(url, {"q": "maria jose"})
    assert len(by_name.context["cl"].result_list) == 2
    assert not client.get(url, {"q": "Outra"}).context["cl"].result_list


def test_the_changelist_takes_the_same_queries_with_many_requests(
    asked, maria, manager_a, client_for, django_assert_max_num_queries
):
    client = client_for(manager_a)
    url = reverse("admin:clinic_privacyrequest_changelist")
    client.get(url)
    with django_assert_max_num_queries(20) as few:
        client.get(url)
    for _ in range(30):
        other = PatientFactory(clinic=maria.clinic)
        privacy.privacy_request_create(patient=other, kind="deletion")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_a_manager_anonymises_from_the_request_page(asked, maria, manager_a, client_for):
    client = client_for(manager_a)
    page = client.get(change_url(asked)).content.decode()
    anonymise_url = reverse("admin:clinic_privacyrequest_anonymise", args=[asked.pk])
    assert f'formaction="{anonymise_url}"' in page
    assert "Anonymise contact and marketing data and close" in page

    # Not without ticking the confirmation.
    response = client.post(anonymise_url, {})
    assert response.status_code == 302
    asked.refresh_from_db()
    assert asked.status == PrivacyRequest.Status.OPEN

    response = client.post(anonymise_url, {"confirm": "yes"})
    assert response["Location"] == change_url(asked)
    asked.refresh_from_db()
    assert asked.status == PrivacyRequest.Status.DONE
    assert asked.handled_by == manager_a
    maria.refresh_from_db()
    assert maria.email == "" and maria.phone == ""
    # Handled: no buttons any more.
    assert "formaction" not in client.get(change_url(asked)).content.decode()


def test_a_manager_refuses_with_a_reason(asked, manager_a, client_for):
    client = client_for(manager_a)
    url = reverse("admin:clinic_privacyrequest_refuse", args=[asked.pk])
    client.post(url, {"refusal": ""})
    asked.refresh_from_db()
    assert asked.status == PrivacyRequest.Status.OPEN
    client.post(url, {"refusal": "Débito em cobrança judicial."})
    asked.refresh_from_db()
    assert asked.status == PrivacyRequest.Status.REFUSED


def test_a_receptionist_sees_requests_but_cannot_handle_them(
    asked, maria, receptionist_a, client_for
):
    client = client_for(receptionist_a)
    assert client.get(change_url(asked)).status_code == 200
    assert "formaction" not in client.get(change_url(asked)).content.decode()
    url = reverse("admin:clinic_privacyrequest_anonymise", args=[asked.pk])
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    maria.refresh_from_db()
    assert maria.phone


def test_requests_are_neither_added_nor_deleted_in_the_admin(asked, admin_a, client_for):
    client = client_for(admin_a)
    assert client.get(reverse("admin:clinic_privacyrequest_add")).status_code == 403
    assert (
        client.get(reverse("admin:clinic_privacyrequest_delete", args=[asked.pk])).status_code
        == 403
    )


def test_a_manager_sees_and_ends_only_their_clinics_portal_sessions(
    patient_a, patient_b, manager_a, client_for
):
    _token, mine = sessions.session_start(patient=patient_a)
    _token, theirs = sessions.session_start(patient=patient_b)
    client = client_for(manager_a)
    url = reverse("admin:portal_portalsession_changelist")
    response = client.get(url, {"state": "open"})
    assert list(response.context["cl"].result_list) == [mine]
    other = reverse("admin:portal_portalsession_change", args=[theirs.pk])
    assert client.get(other).status_code == 404

    client.post(url, {"action": "end_sessions", "_selected_action": [mine.pk, theirs.pk]})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.ended_at is not None
    assert theirs.ended_at is None


def test_roles_grant_privacy_permissions(receptionist_a, manager_a, admin_a):
    assert receptionist_a.has_perm("clinic.view_privacyrequest")
    assert not receptionist_a.has_perm("clinic.change_privacyrequest")
    assert not receptionist_a.has_perm("portal.view_portalsession")
    for user in (manager_a, admin_a):
        assert user.has_perm("clinic.view_privacyrequest")
        assert user.has_perm("clinic.change_privacyrequest")
        assert user.has_perm("portal.change_portalsession")
        assert not user.has_perm("clinic.delete_privacyrequest")


def test_an_old_idle_session_is_not_listed_as_signed_in(portal_a, patient_a):
    _token, old = sessions.session_start(patient=patient_a)
    PortalSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    response = portal_a.get("/portal/meus-dados/")
    assert old.pk not in [s.pk for s in response.context["sessions"]]
