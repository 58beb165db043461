"""Messages after crashes and provider faults: a send is claimed before any provider is
called and its outcome saved after, so a worker killed mid-send or a provider that took
the message and never answered never makes a reminder go twice. What is unknown is asked
of the provider where it can tell, otherwise the template's policy decides: at most once
("uncertain", shown to the desk) or at least once (sign-in codes)."""

import threading
import time
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses
from django.db import connection, transaction
from django.utils import timezone

from clinic import services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel, MessageStatus
from clinic.messaging import catalogue, delivery
from clinic.messaging import services as messaging
from clinic.messaging.models import OutboundMessage
from integrations import breakers
from integrations.console import ConsoleMessaging
from integrations.models import ConsoleRecord, ProviderAccount
from tests.clinic.factories import PatientFactory

pytestmark = pytest.mark.django_db

META_URL = "https://graph.facebook.com/v21.0/106540352242922/messages"


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no except clause
    catches it."""


@pytest.fixture(autouse=True)
def _fresh_breakers():
    breakers.reset_breakers()
    yield
    breakers.reset_breakers()


@pytest.fixture
def maria(clinic_a):
    patient = PatientFactory(
        clinic=clinic_a,
        full_name="Maria José Araújo",
        phone="+5511981234567",
        email="maria@example.com",
        preferred_channel=ContactChannel.WHATSAPP,
    )
    for channel in (ContactChannel.WHATSAPP, ContactChannel.SMS, ContactChannel.EMAIL):
        services.consent_record(
            patient=patient,
            channel=channel,
            purpose=ConsentPurpose.UTILITY,
            status=ConsentStatus.GRANTED,
        )
    return patient


@pytest.fixture
def queued(clinic_a, django_capture_on_commit_callbacks):
    """A message recorded (its delivery task not run: the test delivers it)."""

    def make(patient, template="lembrete_vespera", key="k1"):
        with django_capture_on_commit_callbacks(execute=False):
            return messaging.message_send(
                clinic=clinic_a,
                patient=patient,
                template=template,
                context={"code": "482913", "minutes": "10", "date": "24/11", "time": "14:30"},
                idempotency_key=key,
            )

    return make


@pytest.fixture
def provider_sends(monkeypatch):
    """Every message the (console) provider took, counted outside the database: a rolled
    back transaction cannot hide a send. ``kill_after`` makes the next call die (like a
    SIGKILL) after the provider took the message, before its answer is saved."""
    sends = []
    original = ConsoleMessaging.send
    state = {"kill": False}

    def send(self, message):
        result = original(self, message)
        sends.append(message.idempotency_key)
        if state["kill"]:
            state["kill"] = False
            raise WorkerKilled
        return result

    monkeypatch.setattr(ConsoleMessaging, "send", send)

    class Sends(list):
        def kill_next(self):
            state["kill"] = True

    sends = Sends()
    return sends


def deliver_killed(message):
    with pytest.raises(WorkerKilled):
        messaging.message_deliver(message_id=message.pk)


def after_lease():
    return timezone.now() + timedelta(seconds=delivery.SEND_LEASE + 1)


# --- A worker killed mid-send ---------------------------------------------------------------
def test_a_reminder_whose_worker_died_after_the_provider_took_it_is_never_sent_again(
    maria, queued, provider_sends
):
    message = queued(maria)
    provider_sends.kill_next()
    deliver_killed(message)

    messaging.message_deliver(message_id=message.pk)  # the task, redelivered (acks late)
    assert provider_sends == ["k1:whatsapp"]
    messaging.message_deliver(message_id=message.pk, now=after_lease())  # the sweep, later
    assert provider_sends == ["k1:whatsapp"]

    message.refresh_from_db()
    assert message.status == MessageStatus.UNCERTAIN
    assert message.channel == ContactChannel.WHATSAPP
    assert message.provider == "console"
    assert "Check with the patient" in message.error or "Confira" in message.error
    assert messaging.uncertain_count(clinic=maria.clinic_id) == 1


def test_a_worker_that_died_before_calling_any_provider_leaves_a_reminder_that_still_goes(
    maria, queued, provider_sends
):
    message = queued(maria)
    OutboundMessage.objects.filter(pk=message.pk).update(in_flight_at=timezone.now())

    messaging.message_deliver(message_id=message.pk, now=after_lease())

    assert provider_sends == ["k1:whatsapp"]
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.attempts[0]["outcome"] == "not_called"


def test_a_delivery_claims_calls_and_records_in_a_few_short_queries(
    maria, queued, django_assert_max_num_queries
):
    message = queued(maria)

    # claim (lock, mark) · consents · chain · which provider · console send · outcome
    with django_assert_max_num_queries(14):
        messaging.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_a_send_in_progress_is_left_to_its_worker_until_its_lease_runs_out(
    maria, queued, provider_sends
):
    message = queued(maria)
    OutboundMessage.objects.filter(pk=message.pk).update(in_flight_at=timezone.now())

    messaging.message_deliver(message_id=message.pk)

    assert provider_sends == []
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED


def test_a_sign_in_code_whose_worker_died_mid_send_is_sent_again(maria, queued, provider_sends):
    message = queued(maria, template="codigo_acesso")
    provider_sends.kill_next()
    deliver_killed(message)

    messaging.message_deliver(message_id=message.pk, now=after_lease())

    assert provider_sends == ["k1:whatsapp", "k1:whatsapp"]
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert any(a.get("resent") for a in message.attempts)


def test_the_retry_sweep_picks_up_a_send_whose_worker_died(
    maria, queued, provider_sends, django_capture_on_commit_callbacks
):
    message = queued(maria)
    provider_sends.kill_next()
    deliver_killed(message)

    assert messaging.messages_retry_due(now=timezone.now()) == 0  # its worker may live
    assert messaging.messages_retry_due(now=after_lease()) == 1
    assert provider_sends == ["k1:whatsapp"]


def test_the_policy_is_declared_for_every_template():
    policies = {name: spec.delivery for name, spec in catalogue.CATALOGUE.items()}

    assert set(policies.values()) <= {
        catalogue.AT_MOST_ONCE,
        catalogue.AT_LEAST_ONCE,
    }
    assert policies["codigo_acesso"] == catalogue.AT_LEAST_ONCE
    for name in ("lembrete_consulta", "lembrete_vespera", "promocao", "aniversario"):
        assert policies[name] == catalogue.AT_MOST_ONCE


# --- A provider that took the message and never answered ------------------------------------
@pytest.fixture
def meta_first(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="meta_cloud",
        settings={"phone_number_id": "106540352242922"},
        credentials={"access_token": "meta-token-123456"},
    )


def sms_sends():
    return ConsoleRecord.objects.filter(kind="sms", operation="send").count()


@responses.activate
def test_a_read_timeout_stops_the_fallback_and_the_reminder_is_marked_uncertain(
    maria, queued, meta_first
):
    responses.add(responses.POST, META_URL, body=requests.ReadTimeout("read timed out"))
    message = queued(maria)

    messaging.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert sms_sends() == 0  # no second copy by SMS
    assert message.status == MessageStatus.UNCERTAIN
    assert message.provider == "meta_cloud"
    assert [(a["provider"], a["outcome"]) for a in message.attempts] == [("meta_cloud", "unknown")]
    # and it stays so: the sweep does not resend it
    assert messaging.messages_retry_due(now=after_lease()) == 0


@responses.activate
def test_a_connect_timeout_sent_nothing_so_the_next_channel_serves(maria, queued, meta_first):
    responses.add(responses.POST, META_URL, body=requests.ConnectTimeout("connect timed out"))
    message = queued(maria)

    messaging.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.channel == ContactChannel.SMS
    assert sms_sends() == 1


@responses.activate
def test_a_sign_in_code_whose_provider_never_answered_goes_by_the_next_channel(
    maria, queued, meta_first
):
    responses.add(responses.POST, META_URL, body=requests.ReadTimeout("read timed out"))
    message = queued(maria, template="codigo_acesso")

    messaging.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.channel == ContactChannel.SMS


# --- No transaction while a provider works --------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_the_provider_is_called(clinic_a, monkeypatch):
    patient = PatientFactory(clinic=clinic_a, phone="+5511981234567")
    services.consent_record(
        patient=patient,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.UTILITY,
        status=ConsentStatus.GRANTED,
    )
    message = messaging.message_send(
        clinic=clinic_a, patient=patient, template="lembrete_vespera", idempotency_key="t1"
    )
    seen = []
    original = ConsoleMessaging.send

    def send(self, request):
        seen.append(connection.in_atomic_block)
        # the claim is already committed: the row says it is being sent
        row = OutboundMessage.objects.get(pk=message.pk)
        seen.append(getattr(row, "in_flight_at", None) is not None)
        return original(self, request)

    monkeypatch.setattr(ConsoleMessaging, "send", send)
    # Sent at once (eager task after commit); queue it again to watch a delivery.
    OutboundMessage.objects.filter(pk=message.pk).update(status=MessageStatus.QUEUED)

    messaging.message_deliver(message_id=message.pk)

    assert seen == [False, True]
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.in_flight_at is None


# --- A provider that hangs until its timeout ------------------------------------------------
class Hanging(BaseHTTPRequestHandler):
    """A WhatsApp server that takes the request and answers nothing for 3 seconds."""

    called = threading.Event()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Hanging.called.set()
        time.sleep(3)
        try:
            self.send_response(201)
            self.end_headers()
        except OSError:
            pass  # the client gave up (read timeout)

    def log_message(self, *args):
        pass


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_while_a_provider_hangs_until_its_timeout_no_lock_is_held_and_other_messages_go(
    clinic_a, settings
):
    settings.CUIDAR_HTTP_TIMEOUT = (1.0, 2.0)
    Hanging.called.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="evolution",
        settings={"base_url": f"http://127.0.0.1:{server.server_port}", "instance": "clinica"},
        credentials={"apikey": "evo-key-123456"},
    )
    on_whatsapp = PatientFactory(clinic=clinic_a, preferred_channel=ContactChannel.WHATSAPP)
    on_sms = PatientFactory(clinic=clinic_a, preferred_channel=ContactChannel.SMS)
    for patient, channel in ((on_whatsapp, ContactChannel.WHATSAPP), (on_sms, ContactChannel.SMS)):
        services.consent_record(
            patient=patient,
            channel=channel,
            purpose=ConsentPurpose.UTILITY,
            status=ConsentStatus.GRANTED,
        )
    slow, quick = (
        OutboundMessage.objects.create(
            clinic=clinic_a,
            patient=patient,
            template="lembrete_vespera",
            purpose=ConsentPurpose.UTILITY,
            idempotency_key=key,
            body="Lembrete: sua consulta é amanhã.",
        )
        for patient, key in ((on_whatsapp, "slow"), (on_sms, "quick"))
    )

    def deliver_slow():
        try:
            messaging.message_deliver(message_id=slow.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=deliver_slow)
    started = time.monotonic()
    worker.start()
    try:
        assert Hanging.called.wait(timeout=20), "the provider was never called"

        # The slow message's row is free: no transaction of its worker holds it …
        with transaction.atomic():
            locked = list(OutboundMessage.objects.select_for_update(nowait=True).filter(pk=slow.pk))
        assert [m.in_flight_at is not None for m in locked] == [True]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] == 0
        # … and another message is delivered meanwhile.
        messaging.message_deliver(message_id=quick.pk)
        quick.refresh_from_db()
        assert quick.status == MessageStatus.SENT
        assert worker.is_alive()  # still waiting on the provider
    finally:
        worker.join(timeout=30)
        server.shutdown()

    assert time.monotonic() - started >= 2.0  # it did wait for its read timeout
    slow.refresh_from_db()
    assert slow.status == MessageStatus.UNCERTAIN  # took it, never answered: not resent


# --- Providers that can be asked (Twilio) ---------------------------------------------------
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


@pytest.fixture
def on_twilio(clinic_a, maria):
    ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="sms",
        provider="twilio",
        settings={"from_number": "+15005550006"},
        credentials={"account_sid": TWILIO_SID, "auth_token": "twilio-test-auth-token-5f2e9c"},
    )
    maria.preferred_channel = ContactChannel.SMS
    maria.save()
    return maria


def twilio_page(message, *, created):
    item = {
        "sid": "SM9a8b7c6d5e4f40312a1b2c3d4e5f6a7b",
        "account_sid": TWILIO_SID,
        "body": message.body,
        "to": "+5511981234567",
        "from": "+15005550006",
        "direction": "outbound-api",
        "status": "delivered",
        "date_created": format_datetime(created, usegmt=True),
        "date_sent": format_datetime(created, usegmt=True),
        "date_updated": format_datetime(created, usegmt=True),
    }
    return {"messages": [item], "next_page_uri": None, "page": 0, "page_size": 20}


@responses.activate
def test_a_send_twilio_took_before_the_worker_died_is_found_there_and_not_resent(on_twilio, queued):
    message = queued(on_twilio)
    died_at = timezone.now()
    OutboundMessage.objects.filter(pk=message.pk).update(
        in_flight_at=died_at, in_flight_channel="sms", in_flight_provider="twilio"
    )
    responses.get(TWILIO_MESSAGES, json=twilio_page(message, created=died_at))

    messaging.message_deliver(message_id=message.pk, now=after_lease())

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == "SM9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
    assert [c.request.method for c in responses.calls] == ["GET"]  # no second POST


@responses.activate
def test_a_send_twilio_never_got_is_sent_after_asking(on_twilio, queued):
    message = queued(on_twilio)
    OutboundMessage.objects.filter(pk=message.pk).update(
        in_flight_at=timezone.now(), in_flight_channel="sms", in_flight_provider="twilio"
    )
    responses.get(TWILIO_MESSAGES, json={"messages": [], "next_page_uri": None})
    responses.post(TWILIO_MESSAGES, json={"sid": "SMnew", "status": "queued"}, status=201)

    messaging.message_deliver(message_id=message.pk, now=after_lease())

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == "SMnew"
    assert [c.request.method for c in responses.calls] == ["GET", "POST"]


@responses.activate
def test_a_twilio_read_timeout_waits_for_the_lookup_instead_of_guessing(on_twilio, queued):
    message = queued(on_twilio)
    responses.post(TWILIO_MESSAGES, body=requests.ReadTimeout("read timed out"))

    messaging.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED  # still claimed: ask Twilio later
    assert message.in_flight_provider == "twilio"
    assert sms_sends() == 0 and ConsoleRecord.objects.filter(kind="email").count() == 0

    responses.get(TWILIO_MESSAGES, json=twilio_page(message, created=timezone.now()))
    messaging.message_deliver(message_id=message.pk, now=after_lease())

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.provider == "twilio"
    assert [c.request.method for c in responses.calls] == ["POST", "GET"]
