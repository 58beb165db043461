"""Portal sign-in: a one-time code sent on the patient's consented channel, stored hashed,
valid 10 minutes, locked after 5 wrong tries, throttled; pages that never reveal whether a
CPF is known; portal sessions separate from staff sessions, ending on inactivity, on
sign-out and everywhere at once; the clinic chosen when the person has several."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.messaging.models import OutboundMessage
from clinic.models import AuditEntry, Patient
from clinic.portal import sessions
from clinic.portal.models import PortalChallenge, PortalSession
from integrations.models import ConsoleRecord
from tests.clinic.factories import ClinicFactory, PatientFactory

pytestmark = pytest.mark.django_db

CPF = "529.982.247-25"


@pytest.fixture(autouse=True)
def _english(english):
    """Every test here reads the pages in English."""


def consented(patient, *channels):
    for channel in channels or (ContactChannel.WHATSAPP,):
        services.consent_record(
            patient=patient,
            channel=channel,
            purpose=ConsentPurpose.UTILITY,
            status=ConsentStatus.GRANTED,
        )
    return patient


@pytest.fixture
def maria(patient_a):
    """Patient A (CPF 529.982.247-25), WhatsApp consented."""
    return consented(patient_a)


def request_code(client, identifier, capture, **extra):
    with capture(execute=True):
        return client.post("/portal/entrar/", {"identifier": identifier, **extra})


def last_code(patient) -> str:
    """The code as the patient received it: from the console provider's outbox (the clinic
    that sent it may be another of the person's clinics)."""
    record = (
        ConsoleRecord.objects.filter(operation="send", recipient__in=[patient.phone, patient.email])
        .order_by("-pk")
        .first()
    )
    assert record is not None, "no message was sent"
    return re.search(r"\b(\d{6})\b", record.payload["text"]).group(1)


def sign_in(client, patient, capture, identifier=CPF):
    response = request_code(client, identifier, capture)
    assert response.status_code == 302
    return client.post(response.url, {"code": last_code(patient)})


# --- The happy path -------------------------------------------------------------------------
def test_a_patient_signs_in_with_the_code_sent_to_their_whatsapp(
    client, maria, django_capture_on_commit_callbacks
):
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response.url.startswith("/portal/entrar/codigo/")
    message = OutboundMessage.objects.get(patient=maria, template="codigo_acesso")
    assert message.channel == ContactChannel.WHATSAPP
    assert message.status == "sent"

    response = client.post(response.url, {"code": last_code(maria)})
    assert response.status_code == 302 and response.url == "/portal/"
    session = PortalSession.objects.get(patient=maria)
    assert session.ended_at is None
    assert AuditEntry.objects.filter(action="sign_in", patient_id=maria.pk).count() == 1
    assert client.get("/portal/").status_code == 200


@pytest.mark.parametrize("identifier", ["52998224725", "(11) 98123-4567", "Maria@Example.com"])
def test_cpf_phone_or_e_mail_all_find_the_patient(
    client, clinic_a, identifier, django_capture_on_commit_callbacks
):
    patient = consented(
        PatientFactory(
            clinic=clinic_a, cpf="52998224725", phone="+5511981234567", email="maria@example.com"
        )
    )
    response = sign_in(client, patient, django_capture_on_commit_callbacks, identifier)
    assert response.status_code == 302 and response.url == "/portal/"


def test_the_code_is_stored_only_as_a_hash(client, maria, django_capture_on_commit_callbacks):
    request_code(client, CPF, django_capture_on_commit_callbacks)
    code = last_code(maria)
    challenge = PortalChallenge.objects.get()
    assert code not in challenge.code_hash
    assert len(challenge.code_hash) == 64
    assert challenge.patient_ids == [maria.pk]


def test_next_brings_the_patient_back_where_they_were_going(
    client, maria, django_capture_on_commit_callbacks
):
    response = client.get("/portal/consultas/")
    assert response.status_code == 302
    assert response.url == "/portal/entrar/?next=%2Fportal%2Fconsultas%2F"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(response.url, {"identifier": CPF, "next": "/portal/consultas/"})
    response = client.post(response.url, {"code": last_code(maria), "next": "/portal/consultas/"})
    assert response.url == "/portal/consultas/"


def test_next_never_leaves_the_portal(client, maria, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/portal/entrar/", {"identifier": CPF, "next": "https://evil.example/portal/"}
        )
    response = client.post(
        response.url, {"code": last_code(maria), "next": "https://evil.example/portal/"}
    )
    assert response.url == "/portal/"


# --- Never reveal whether a CPF exists ------------------------------------------------------
def test_an_unknown_cpf_gets_the_same_answer_and_no_code_can_open_it(
    client, maria, django_capture_on_commit_callbacks
):
    known = request_code(Client(), CPF, django_capture_on_commit_callbacks)
    unknown = request_code(client, "111.444.777-35", django_capture_on_commit_callbacks)
    assert unknown.status_code == known.status_code == 302
    assert unknown.url == known.url
    assert "6-digit code" in client.get(unknown.url).content.decode()
    assert OutboundMessage.objects.filter(template="codigo_acesso").count() == 1  # Maria's only
    for code in ("000000", "123456", last_code(maria)):
        response = client.post(unknown.url, {"code": code})
        assert response.status_code == 400
    assert not PortalSession.objects.exists()


def test_input_that_is_no_identifier_is_explained(client, db):
    response = client.post("/portal/entrar/", {"identifier": "abc"})
    assert response.status_code == 400
    assert "Enter your CPF, mobile phone number or e-mail." in response.content.decode()
    assert not PortalChallenge.objects.exists()


# --- Wrong, locked, expired, reused ---------------------------------------------------------
def test_five_wrong_codes_lock_the_code_even_for_the_right_one(
    client, maria, django_capture_on_commit_callbacks
):
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    code_url, code = response.url, last_code(maria)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        response = client.post(code_url, {"code": wrong})
        assert response.status_code == 400
        expected = "attempt left" if left == 1 else "attempts left"
        assert f"You have {left} {expected}" in response.content.decode()
    response = client.post(code_url, {"code": wrong})
    assert "This code is now locked" in response.content.decode()
    response = client.post(code_url, {"code": code})
    assert response.status_code == 400
    assert "locked after too many wrong attempts" in response.content.decode()
    assert not PortalSession.objects.exists()


def test_an_expired_code_is_refused_with_a_clear_message(
    client, maria, django_capture_on_commit_callbacks
):
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    PortalChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(response.url, {"code": last_code(maria)})
    assert response.status_code == 400
    assert "This code has expired. Codes are valid for 10 minutes." in response.content.decode()
    assert not PortalSession.objects.exists()


def test_a_code_works_once(client, maria, django_capture_on_commit_callbacks):
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    code_url, code = response.url, last_code(maria)
    step_cookie = client.cookies[sessions.CHALLENGE_COOKIE].value
    assert client.post(code_url, {"code": code}).status_code == 302
    other = Client()
    other.cookies[sessions.CHALLENGE_COOKIE] = step_cookie
    response = other.post(code_url, {"code": code})
    assert response.status_code == 400
    assert "already been used" in response.content.decode()
    assert PortalSession.objects.count() == 1


def test_a_code_with_the_wrong_shape_costs_no_attempt(
    client, maria, django_capture_on_commit_callbacks
):
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    response = client.post(response.url, {"code": "12"})
    assert "The code has 6 digits." in response.content.decode()
    assert PortalChallenge.objects.get().failed_attempts == 0


def test_without_the_step_cookie_the_code_page_starts_over(client, db):
    response = client.post("/portal/entrar/codigo/", {"code": "123456"})
    assert response.status_code == 302 and response.url == "/portal/entrar/"


# --- Throttling -----------------------------------------------------------------------------
def test_repeated_code_requests_for_one_identifier_are_throttled(
    client, maria, django_capture_on_commit_callbacks
):
    for _ in range(sessions.CODES_PER_IDENTIFIER):
        assert request_code(client, CPF, django_capture_on_commit_callbacks).status_code == 302
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert PortalChallenge.objects.count() == sessions.CODES_PER_IDENTIFIER


def test_an_unknown_identifier_is_throttled_the_same_way(client, db):
    for _ in range(sessions.CODES_PER_IDENTIFIER):
        assert client.post("/portal/entrar/", {"identifier": "11144477735"}).status_code == 302
    assert client.post("/portal/entrar/", {"identifier": "11144477735"}).status_code == 429


def test_code_requests_from_one_address_are_throttled_across_identifiers(client, db):
    cpfs = ["11144477735", "52998224725", "39053344705", "86288366757", "71428793860"]
    answers = []
    for cpf in cpfs * 3:
        answers.append(client.post("/portal/entrar/", {"identifier": cpf}).status_code)
    assert answers[: sessions.CODES_PER_IP] == [302] * sessions.CODES_PER_IP
    assert set(answers[sessions.CODES_PER_IP :]) == {429}


def test_a_patient_reached_through_several_identifiers_gets_at_most_three_codes(
    maria, django_capture_on_commit_callbacks
):
    maria.email = "maria@example.com"
    maria.save()
    for identifier in (CPF, "maria@example.com", maria.phone, "52998224725"):
        response = request_code(
            Client(REMOTE_ADDR="10.0.0.9"), identifier, django_capture_on_commit_callbacks
        )
        assert response.status_code == 302  # the page never tells
    sent = OutboundMessage.objects.filter(patient=maria, template="codigo_acesso").count()
    assert sent == sessions.CODES_PER_PATIENT


def test_code_checks_from_one_address_are_throttled(client, maria):
    statuses = []
    for _ in range(sessions.CHECKS_PER_IP // sessions.MAX_ATTEMPTS + 1):
        challenge = sessions.challenge_start(identifier="11144477735", ip=None)
        client.cookies[sessions.CHALLENGE_COOKIE] = sessions.step_token(challenge)
        for _ in range(sessions.MAX_ATTEMPTS):
            response = client.post("/portal/entrar/codigo/", {"code": "000000"})
            statuses.append(response.status_code)
        cache.clear()  # only the identifier's counter would stop it otherwise
        for _ in range(statuses.count(400)):
            sessions._hit("check-ip:127.0.0.1", sessions.CHECKS_PER_IP)
    assert 429 in statuses


# --- Several clinics ------------------------------------------------------------------------
def test_a_patient_of_two_clinics_chooses_the_clinic(
    client, maria, clinic_b, django_capture_on_commit_callbacks
):
    also_b = consented(PatientFactory(clinic=clinic_b, cpf=maria.cpf, phone=maria.phone))
    response = sign_in(client, maria, django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response.url.startswith("/portal/entrar/clinica/")
    page = client.get(response.url).content.decode()
    assert "Clínica Alfa" in page and "Clínica Beta" in page
    response = client.post("/portal/entrar/clinica/", {"patient": also_b.pk})
    assert response.status_code == 302 and response.url == "/portal/"
    assert PortalSession.objects.get().patient == also_b


def test_the_clinic_chooser_offers_only_the_matched_records(
    client, maria, patient_b, clinic_b, django_capture_on_commit_callbacks
):
    consented(PatientFactory(clinic=clinic_b, cpf=maria.cpf, phone=maria.phone))
    sign_in(client, maria, django_capture_on_commit_callbacks)
    response = client.post("/portal/entrar/clinica/", {"patient": patient_b.pk})
    assert response.status_code == 200  # asked again, never signed in as B's patient
    assert not PortalSession.objects.exists()


def test_an_inactive_clinic_is_not_offered(client, maria, django_capture_on_commit_callbacks):
    request_code(client, CPF, django_capture_on_commit_callbacks)
    maria.clinic.is_active = False
    maria.clinic.save()
    response = client.post("/portal/entrar/codigo/", {"code": last_code(maria)})
    assert response.status_code == 302 and response.url == "/portal/entrar/"
    assert not PortalSession.objects.exists()


# --- Sessions -------------------------------------------------------------------------------
def test_a_portal_session_is_not_a_staff_session(portal_a, client_for, receptionist_a):
    assert portal_a.get("/admin/").status_code == 302  # to the staff login
    staff = client_for(receptionist_a)
    assert staff.get("/portal/").status_code == 302  # to the portal sign-in


def test_the_session_ends_after_inactivity(portal_a, patient_a):
    PortalSession.objects.update(last_seen_at=timezone.now() - timedelta(minutes=31))
    response = portal_a.get("/portal/")
    assert response.status_code == 302
    assert response.url == "/portal/entrar/?next=%2Fportal%2F&expired=1"
    assert PortalSession.objects.get().ended_at is not None
    page = portal_a.get(response.url).content.decode()
    assert "Your session ended after a period without activity" in page


def test_activity_keeps_the_session_alive(portal_a):
    PortalSession.objects.update(last_seen_at=timezone.now() - timedelta(minutes=29))
    assert portal_a.get("/portal/").status_code == 200
    session = PortalSession.objects.get()
    assert timezone.now() - session.last_seen_at < timedelta(seconds=5)


def test_sign_out_ends_this_session_only(patient_a, portal_client_for):
    phone, laptop = portal_client_for(patient_a), portal_client_for(patient_a)
    response = phone.post("/portal/sair/")
    assert response.status_code == 302
    assert phone.get("/portal/").status_code == 302
    assert laptop.get("/portal/").status_code == 200


def test_sign_out_of_every_device(patient_a, patient_b, portal_client_for):
    phone, laptop, other = (
        portal_client_for(patient_a),
        portal_client_for(patient_a),
        portal_client_for(patient_b),
    )
    assert phone.post("/portal/sair-de-todos/").status_code == 302
    assert phone.get("/portal/").status_code == 302
    assert laptop.get("/portal/").status_code == 302
    assert other.get("/portal/").status_code == 200


def test_sign_out_needs_a_post(portal_a):
    assert portal_a.get("/portal/sair/").status_code == 405
    assert portal_a.get("/portal/").status_code == 200


def test_a_forged_cookie_opens_nothing(client, db):
    client.cookies[sessions.COOKIE_NAME] = "not-a-token"
    assert client.get("/portal/").status_code == 302


def test_portal_pages_carry_a_strict_content_security_policy(portal_a, client):
    for response in (portal_a.get("/portal/"), client.get("/portal/entrar/")):
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["Cache-Control"] == "no-store"


def test_the_sign_in_pages_render_with_constant_queries(
    client, maria, clinic_b, django_assert_num_queries, django_capture_on_commit_callbacks
):
    with django_assert_num_queries(0):
        assert client.get("/portal/entrar/").status_code == 200
    request_code(client, CPF, django_capture_on_commit_callbacks)
    with django_assert_num_queries(0):
        assert client.get("/portal/entrar/codigo/").status_code == 200
    for _ in range(3):  # the same person in more clinics: still one query for all
        consented(PatientFactory(clinic=ClinicFactory(), cpf=maria.cpf, phone=maria.phone))
    challenge = PortalChallenge.objects.get()
    challenge.patient_ids = list(Patient.objects.filter(cpf=maria.cpf).values_list("pk", flat=True))
    challenge.used_at = timezone.now()
    challenge.save()
    client.cookies[sessions.CHALLENGE_COOKIE] = sessions.step_token(challenge, verified=True)
    with django_assert_num_queries(2):
        response = client.get("/portal/entrar/clinica/")
    assert response.content.decode().count('name="patient"') == 4


def test_the_logo_is_served_only_to_the_clinic_s_patients(
    portal_a, clinic_a, client, settings, tmp_path
):
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT = tmp_path
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    clinic_a.logo.save("alfa.png", ContentFile(png))
    response = portal_a.get("/portal/logo/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == png
    assert client.get("/portal/logo/").status_code == 302


@pytest.mark.parametrize(
    ("content", "ok"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, True),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 10, True),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", True),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', False),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", False),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (200 * 1024), False),
    ],
)
def test_a_logo_must_be_a_small_png_jpeg_or_webp(content, ok):
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile

    from clinic.validators import validate_logo

    upload = SimpleUploadedFile("logo", content)
    if ok:
        validate_logo(upload)
    else:
        with pytest.raises(ValidationError):
            validate_logo(upload)


def test_old_challenges_are_purged_and_recent_ones_kept(maria):
    old = sessions.challenge_start(identifier=CPF, ip=None)
    recent = sessions.challenge_start(identifier=CPF, ip=None)
    PortalChallenge.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=1, minutes=1)
    )
    from clinic.portal.tasks import portal_challenges_purge_task

    assert portal_challenges_purge_task() == 1
    assert list(PortalChallenge.objects.values_list("pk", flat=True)) == [recent.pk]


def test_next_keeps_its_whole_query_string(client, maria, django_capture_on_commit_callbacks):
    wanted = "/portal/agendar/?service=1&professional=2"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/portal/entrar/", {"identifier": CPF, "next": wanted})
    response = client.post(response.url, {"code": last_code(maria)})
    assert response.url == wanted


# --- Guesses per person, and no code without its message (issue 16) ------------------------
def test_wrong_codes_count_per_person_across_their_identifiers(
    maria, django_capture_on_commit_callbacks
):
    """An attacker with the CPF, the e-mail and the phone used to get 5 guesses per code
    and 3 codes per identifier; the person's allowance is now shared by all of them."""
    maria.email = "maria@example.com"
    maria.save()
    wrong_guesses = 0
    for n, identifier in enumerate((CPF, "maria@example.com")):
        attacker = Client(REMOTE_ADDR=f"10.0.1.{n}")
        response = request_code(attacker, identifier, django_capture_on_commit_callbacks)
        for _ in range(sessions.MAX_ATTEMPTS):
            code = last_code(maria)
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            assert attacker.post(response.url, {"code": wrong}).status_code == 400
            wrong_guesses += 1
    assert wrong_guesses == 10  # GUESSES_PER_PERSON: 2 codes × 5 tries

    maria_herself = Client(REMOTE_ADDR="10.0.2.1")
    response = request_code(maria_herself, maria.phone, django_capture_on_commit_callbacks)
    response = maria_herself.post(response.url, {"code": last_code(maria)})
    assert response.status_code == 429
    assert "Too many wrong codes were tried for your records" in response.content.decode()
    assert not PortalSession.objects.exists()


def test_a_wrong_code_after_the_person_s_lock_gets_the_usual_answer(
    maria, django_capture_on_commit_callbacks
):
    """The lock shows only to the holder of the right code: a wrong guess cannot tell that
    two identifiers belong to one registered person."""
    for key in sessions._guess_keys(PortalChallenge(patient_ids=[maria.pk], identifier_hash="x")):
        cache.set(key, sessions.GUESSES_PER_PERSON, timeout=60)
    client = Client()
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    wrong = f"{(int(last_code(maria)) + 1) % 1_000_000:06d}"
    response = client.post(response.url, {"code": wrong})
    assert response.status_code == 400
    assert "You have 4 attempts left" in response.content.decode()


@pytest.fixture
def predictable_codes(monkeypatch):
    """Every code drawn is 123456, so a test can try the code of a message never sent."""
    monkeypatch.setattr(sessions.secrets, "randbelow", lambda _n: 123456)
    return "123456"


def test_a_code_held_back_by_the_person_s_limit_opens_nothing(
    maria, predictable_codes, django_capture_on_commit_callbacks
):
    maria.email = "maria@example.com"
    maria.save()
    for n, identifier in enumerate((CPF, "maria@example.com", maria.phone)):
        request_code(
            Client(REMOTE_ADDR=f"10.0.3.{n}"), identifier, django_capture_on_commit_callbacks
        )
    assert OutboundMessage.objects.filter(template="codigo_acesso").count() == 3
    attacker = Client(REMOTE_ADDR="10.0.3.9")
    response = request_code(attacker, "52998224725", django_capture_on_commit_callbacks)
    assert response.status_code == 302  # the page never tells
    assert OutboundMessage.objects.filter(template="codigo_acesso").count() == 3  # held back
    response = attacker.post(response.url, {"code": predictable_codes})
    assert response.status_code == 400
    assert not PortalSession.objects.exists()


def test_no_code_is_made_for_a_patient_no_channel_can_reach(
    client, patient_a, predictable_codes, django_capture_on_commit_callbacks
):
    response = request_code(client, CPF, django_capture_on_commit_callbacks)  # no consent
    assert not OutboundMessage.objects.filter(template="codigo_acesso", status="queued").exists()
    response = client.post(response.url, {"code": predictable_codes})
    assert response.status_code == 400
    assert not PortalSession.objects.exists()


def test_a_code_whose_message_failed_opens_nothing(
    client, maria, predictable_codes, django_capture_on_commit_callbacks
):
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    OutboundMessage.objects.filter(template="codigo_acesso").update(status="failed")
    response = client.post(response.url, {"code": predictable_codes})
    assert response.status_code == 400
    assert "Wrong code" in response.content.decode()
    assert not PortalSession.objects.exists()


def test_the_code_is_sent_once_when_its_task_runs_twice(maria, django_capture_on_commit_callbacks):
    client = Client()
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    challenge = PortalChallenge.objects.get()
    assert sessions.challenge_code_send(challenge_id=str(challenge.pk)) is False
    assert OutboundMessage.objects.filter(template="codigo_acesso").count() == 1
    assert client.post(response.url, {"code": last_code(maria)}).status_code == 302


def test_the_code_still_goes_out_when_the_broker_is_down(
    client, maria, monkeypatch, django_capture_on_commit_callbacks
):
    from clinic.portal.tasks import portal_code_send_task

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(portal_code_send_task, "apply_async", broker_down)
    response = request_code(client, CPF, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert client.post(response.url, {"code": last_code(maria)}).status_code == 302
