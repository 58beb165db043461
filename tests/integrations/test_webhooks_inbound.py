"""Inbound webhooks: authenticated on the raw body, stored raw once per provider event,
answered at once, processed after commit into domain events and in-process handlers."""

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.core.cache import cache
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from integrations import inbound, registry, webhooks
from integrations.base import (
    InboundMessage,
    MessageStatusUpdate,
    MessagingProvider,
    PaymentUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookEvent,
    WebhookMalformed,
    WebhookReply,
    WebhookUnauthorized,
)
from integrations.choices import InboundWebhookStatus
from integrations.models import Event, InboundWebhook, ProviderAccount

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "hmactest-shared-secret-42"
SIGNATURE_HEADER = "X-Hmactest-Signature"


@registry.register
class HmacTestProvider(MessagingProvider):
    """A provider as real ones look: HMAC-SHA256 of the raw body in a header, JSON body
    with the provider's own event id, a GET handshake that echoes a challenge."""

    kind = "sms"
    name = "hmactest"
    credentials_schema = {"webhook_secret": "shared secret of the webhook signature"}

    def verify_webhook(self, request):
        signature = request.header(SIGNATURE_HEADER)
        if not signature:
            raise WebhookUnauthorized("missing signature", status=401)
        secret = self.credentials.get("webhook_secret", "").encode()
        expected = hmac.new(secret, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise WebhookUnauthorized("bad signature", status=403)

    def parse_webhook(self, request):
        try:
            data = json.loads(request.body)
        except ValueError as exc:
            raise WebhookMalformed(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict) or not data.get("event_id"):
            raise WebhookMalformed("no event_id in the body")
        items = []
        for message in data.get("messages", []):
            items.append(
                InboundMessage(
                    provider_message_id=message["id"],
                    from_address=message["from"],
                    to_address=message["to"],
                    text=message["text"],
                )
            )
        for status in data.get("statuses", []):
            items.append(
                MessageStatusUpdate(provider_message_id=status["id"], status=status["status"])
            )
        for payment in data.get("payments", []):
            items.append(
                PaymentUpdate(
                    gateway_payment_id=payment["id"],
                    status=payment["status"],
                    amount=Decimal(payment["amount"]),
                )
            )
        return WebhookEvent(dedupe_key=data["event_id"], items=items)

    def webhook_reply(self, request):
        if request.method == "GET":
            return WebhookReply(body=request.query.get("challenge", ""), content_type="text/plain")
        return WebhookReply(status=200, body='{"received": true}')


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def account_a(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="sms",
        provider="hmactest",
        credentials={"webhook_secret": WEBHOOK_SECRET},
    )


def url_for(account, subpath=""):
    if subpath:
        return reverse(
            "webhooks:receive-subpath",
            args=[account.provider, account.webhook_token, subpath],
        )
    return reverse("webhooks:receive", args=[account.provider, account.webhook_token])


def message_body(event_id="evt-1", text="Oi, quero remarcar minha consulta") -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "messages": [
                {"id": "wamid.001", "from": "+5511987654321", "to": "+5511300000000", "text": text}
            ],
        }
    ).encode()


def post(client, account, body: bytes, *, signature=None, subpath="", **headers):
    if signature is None:
        signature = sign(body)
    if signature:
        headers[SIGNATURE_HEADER] = signature
    return client.post(
        url_for(account, subpath), data=body, content_type="application/json", headers=headers
    )


@pytest.fixture(autouse=True)
def _only_this_modules_handlers():
    """The framework's own behaviour, without the apps' handlers (billing settles
    PaymentUpdate items; its tests are in tests/billing)."""
    saved = {item_type: list(funcs) for item_type, funcs in inbound._handlers.items()}
    inbound._handlers.clear()
    yield
    inbound._handlers.clear()
    inbound._handlers.update(saved)


@pytest.fixture
def handler_calls():
    """An in-process handler of PaymentUpdate that records its calls (and can fail)."""
    calls = []
    state = {"fail": False}

    def on_payment(item, *, webhook, index):
        calls.append((webhook.pk, index, item.gateway_payment_id))
        if isinstance(state["fail"], Exception):
            raise state["fail"]
        if state["fail"]:
            raise RuntimeError("billing is down")

    inbound.inbound_handler(PaymentUpdate)(on_payment)
    on_payment.state = state
    yield calls
    inbound.inbound_handler_remove(PaymentUpdate, on_payment)


# --- Authentication -------------------------------------------------------------------------
def test_it_rejects_a_missing_signature_with_401_and_stores_nothing(client, account_a):
    response = post(client, account_a, message_body(), signature="")
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert InboundWebhook.objects.count() == 0


def test_it_rejects_a_wrong_signature_with_403_stores_nothing_and_counts_it(
    client, account_a, caplog
):
    cache.delete("webhooks:rejected:hmactest")
    body = message_body()
    with caplog.at_level("WARNING", logger="integrations.webhooks"):
        response = post(client, account_a, body, signature=sign(body, "not-the-secret"))
        post(client, account_a, body, signature=sign(body + b"tampered"))
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden"}
    assert InboundWebhook.objects.count() == 0
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0
    assert webhooks.rejected_count("hmactest") == 2
    assert "webhook rejected: provider=hmactest" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text


def test_it_answers_404_for_an_unknown_token(client, account_a):
    body = message_body()
    unknown = reverse("webhooks:receive", args=["hmactest", "9f1c2d1e-not-a-real-token"])
    response = client.post(
        unknown, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(body)}
    )
    assert response.status_code == 404
    assert InboundWebhook.objects.count() == 0


def test_it_answers_404_when_the_token_belongs_to_another_provider(client, account_a):
    body = message_body()
    other = reverse("webhooks:receive", args=["console", account_a.webhook_token])
    response = client.post(
        other, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(body)}
    )
    assert response.status_code == 404
    assert InboundWebhook.objects.count() == 0


def test_it_answers_404_for_a_disabled_account(client, account_a):
    account_a.enabled = False
    account_a.save(update_fields=["enabled"])
    response = post(client, account_a, message_body())
    assert response.status_code == 404
    assert InboundWebhook.objects.count() == 0


def test_it_refuses_other_methods(client, account_a):
    assert client.put(url_for(account_a), data=b"{}").status_code == 405


# --- Storing --------------------------------------------------------------------------------
def test_it_stores_the_raw_request_and_answers_the_provider_at_once(
    client, account_a, django_capture_on_commit_callbacks
):
    body = message_body()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(
            client,
            account_a,
            body,
            subpath="messages/inbound",
            Authorization="Bearer partner-token-do-not-store",
            Cookie="sessionid=abc",
            **{
                "User-Agent": "HmacTest-Hookshot/2.1",
                "X-Api-Token": "zapi-client-token",
                "X-Request-Id": "req-77",
            },
        )
    assert response.status_code == 200
    assert response.json() == {"received": True}
    assert len(callbacks) == 1  # processing is enqueued after commit, not run in the request

    webhook = InboundWebhook.objects.get()
    assert webhook.clinic == account_a.clinic
    assert webhook.account == account_a
    assert webhook.provider == "hmactest"
    assert webhook.path == "messages/inbound"
    assert bytes(webhook.body) == body
    assert webhook.content_type == "application/json"
    assert webhook.dedupe_key == f"hmactest:{account_a.pk}:evt-1"
    assert webhook.status == InboundWebhookStatus.RECEIVED
    assert webhook.headers["x-hmactest-signature"] == sign(body)
    assert webhook.headers["x-request-id"] == "req-77"
    assert webhook.headers["content-type"] == "application/json"
    assert webhook.headers["user-agent"] == "HmacTest-Hookshot/2.1"
    stored = json.dumps(webhook.headers).lower()
    for secret in ("partner-token-do-not-store", "sessionid", "zapi-client-token"):
        assert secret not in stored
    assert (
        Event.objects.exclude(event_type__startswith="lead.").count() == 0
    )  # nothing acted on before the task runs


def test_a_header_carrying_the_accounts_secret_is_not_stored_whatever_its_name(client, account_a):
    # Focus NFe sends the secret the clinic chose in a header the clinic names.
    post(client, account_a, message_body(), **{"X-Clinic-Hook": WEBHOOK_SECRET})

    webhook = InboundWebhook.objects.get()
    assert "x-clinic-hook" not in webhook.headers
    assert WEBHOOK_SECRET not in json.dumps(webhook.headers)


def test_it_keeps_the_query_string_without_secret_looking_parameters(client, account_a):
    body = message_body()
    url = url_for(account_a) + "?type=payment&data.id=123&token=abc-secret"
    client.post(
        url, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(body)}
    )
    webhook = InboundWebhook.objects.get()
    assert webhook.headers[inbound.QUERY_KEY] == {"type": "payment", "data.id": "123"}
    assert inbound.stored_request(webhook).query == {"type": "payment", "data.id": "123"}


def test_it_enqueues_processing_on_the_high_priority_queue(
    client, account_a, django_capture_on_commit_callbacks
):
    from integrations.tasks_inbound import inbound_webhook_process_task

    with (
        mock.patch.object(inbound_webhook_process_task, "apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        post(client, account_a, message_body())
    webhook = InboundWebhook.objects.get()
    apply_async.assert_called_once_with(args=[webhook.pk], queue="integrations-high")


def test_a_get_handshake_is_answered_and_not_stored(client, account_a):
    response = client.get(
        url_for(account_a) + "?challenge=1158201444", headers={SIGNATURE_HEADER: sign(b"")}
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert InboundWebhook.objects.count() == 0


def test_an_unsigned_get_handshake_is_refused(client, account_a):
    response = client.get(url_for(account_a) + "?challenge=1158201444")
    assert response.status_code == 401
    assert b"1158201444" not in response.content


# --- Duplicates -----------------------------------------------------------------------------
def test_the_same_event_sent_twice_is_stored_once_and_processed_once(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    body = json.dumps(
        {
            "event_id": "evt-dup",
            "messages": [
                {"id": "m1", "from": "+5511911112222", "to": "+551130000000", "text": "oi"}
            ],
            "payments": [{"id": "pay_1", "status": "paid", "amount": "150.00"}],
        }
    ).encode()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, account_a, body)
        assert response.status_code == 200
        assert response.json() == {"received": True}  # the provider's normal reply both times

    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert Event.objects.filter(event_type="message.inbound").count() == 1
    assert handler_calls == [(webhook.pk, 1, "pay_1")]


def test_a_duplicate_of_a_webhook_whose_task_was_lost_gets_it_processed(
    client, account_a, django_capture_on_commit_callbacks
):
    body = message_body()
    with django_capture_on_commit_callbacks(execute=False):
        post(client, account_a, body)  # committed, but the task never ran (broker down)
    assert InboundWebhook.objects.get().status == InboundWebhookStatus.RECEIVED

    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, body)  # the provider retries
    assert InboundWebhook.objects.get().status == InboundWebhookStatus.PROCESSED
    assert Event.objects.filter(event_type="message.inbound").count() == 1


def test_the_same_event_id_on_two_accounts_is_two_webhooks(
    client, account_a, clinic_b, django_capture_on_commit_callbacks
):
    account_b = ProviderAccount.objects.create(
        clinic=clinic_b,
        kind="sms",
        provider="hmactest",
        credentials={"webhook_secret": WEBHOOK_SECRET},
    )
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, message_body())
        post(client, account_b, message_body())
    assert {w.clinic_id for w in InboundWebhook.objects.all()} == {account_a.clinic_id, clinic_b.pk}
    assert Event.objects.filter(clinic=clinic_b, event_type="message.inbound").count() == 1


# --- Malformed bodies -----------------------------------------------------------------------
def test_a_malformed_body_is_kept_marked_failed_and_acknowledged(
    client, account_a, django_capture_on_commit_callbacks
):
    body = b'{"messages": ["truncated'
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = post(client, account_a, body)
        assert response.status_code == 200  # so that the provider stops retrying
        assert callbacks == []  # nothing to process

    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.FAILED
    assert "body is not JSON" in webhook.error
    assert bytes(webhook.body) == body
    assert (
        webhook.dedupe_key == f"hmactest:{account_a.pk}:sha256:{hashlib.sha256(body).hexdigest()}"
    )
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_a_crashing_parser_keeps_the_request_as_failed(client, account_a):
    with mock.patch.object(HmacTestProvider, "parse_webhook", side_effect=KeyError("entry")):
        response = post(client, account_a, message_body())
    assert response.status_code == 200
    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.FAILED
    assert webhook.error == "KeyError: 'entry'"


# --- Processing -----------------------------------------------------------------------------
def test_processing_publishes_message_inbound_with_ids_and_no_message_text(
    client, account_a, django_capture_on_commit_callbacks
):
    text = "Meu CPF é 529.982.247-25, posso pagar amanhã?"
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, message_body(text=text))

    webhook = InboundWebhook.objects.get()
    event = Event.objects.get(event_type="message.inbound")
    assert event.clinic_id == account_a.clinic_id
    assert event.payload == {
        "inbound_webhook_id": webhook.pk,
        "item": 0,
        "provider": "hmactest",
        "account_id": account_a.pk,
        "provider_message_id": "wamid.001",
    }
    serialized = json.dumps(event.payload)
    for personal in ("529.982.247-25", "pagar", "+5511987654321"):
        assert personal not in serialized
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert webhook.processed_at is not None


def test_processing_publishes_message_status(client, account_a, django_capture_on_commit_callbacks):
    body = json.dumps({"event_id": "st-1", "statuses": [{"id": "wamid.9", "status": "read"}]})
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, body.encode())
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.status"
    assert event.payload["provider_message_id"] == "wamid.9"
    assert event.payload["status"] == "read"


def test_a_webhook_nobody_acts_on_is_ignored(client, account_a, django_capture_on_commit_callbacks):
    body = json.dumps(
        {"event_id": "pay-1", "payments": [{"id": "pay_1", "status": "paid", "amount": "10"}]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, body.encode())
    assert InboundWebhook.objects.get().status == InboundWebhookStatus.IGNORED
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 0


def test_handlers_receive_the_items_of_their_type(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    body = json.dumps(
        {"event_id": "pay-2", "payments": [{"id": "pay_2", "status": "paid", "amount": "10"}]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, body.encode())
    webhook = InboundWebhook.objects.get()
    assert handler_calls == [(webhook.pk, 0, "pay_2")]
    assert webhook.status == InboundWebhookStatus.PROCESSED


def test_a_failing_handler_undoes_every_item_and_marks_the_webhook_failed(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    [on_payment] = inbound.handlers_of(PaymentUpdate)
    on_payment.state["fail"] = True
    body = json.dumps(
        {
            "event_id": "mixed-1",
            "messages": [
                {"id": "m1", "from": "+5511911112222", "to": "+551130000000", "text": "oi"}
            ],
            "payments": [{"id": "pay_3", "status": "paid", "amount": "10"}],
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, body.encode())
    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.FAILED
    assert webhook.error == "RuntimeError: billing is down"
    assert (
        Event.objects.exclude(event_type__startswith="lead.").count() == 0
    )  # the message item's event was rolled back with it

    on_payment.state["fail"] = False
    inbound.inbound_webhook_retry(webhook_id=webhook.pk)
    webhook.refresh_from_db()
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert webhook.error == ""
    assert Event.objects.filter(event_type="message.inbound").count() == 1
    assert len(handler_calls) == 2  # once failed (undone), once for real


def test_processing_is_idempotent(client, account_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, message_body())
    webhook = InboundWebhook.objects.get()
    inbound.inbound_webhook_process(webhook_id=webhook.pk)
    inbound.inbound_webhook_retry(webhook_id=webhook.pk)  # only failed ones are retried
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 1
    assert inbound.inbound_webhook_process(webhook_id=10**9) is None


def test_processing_reparses_the_stored_body(account_a):
    """The stored request is the source of truth: what is processed is what was stored."""
    webhook = InboundWebhook.objects.create(
        clinic=account_a.clinic,
        account=account_a,
        provider="hmactest",
        body=message_body(event_id="stored"),
        content_type="application/json",
        dedupe_key=f"hmactest:{account_a.pk}:stored",
    )
    inbound.inbound_webhook_process(webhook_id=webhook.pk)
    webhook.refresh_from_db()
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert (
        Event.objects.exclude(event_type__startswith="lead.").get().payload["inbound_webhook_id"]
        == webhook.pk
    )


def test_a_webhook_whose_account_was_deleted_fails_with_the_reason(account_a):
    webhook = InboundWebhook.objects.create(
        clinic=account_a.clinic,
        account=account_a,
        provider="hmactest",
        body=message_body(),
        dedupe_key="hmactest:x:orphan",
    )
    account_a.delete()
    inbound.inbound_webhook_process(webhook_id=webhook.pk)
    webhook.refresh_from_db()
    assert webhook.status == InboundWebhookStatus.FAILED
    assert "account" in webhook.error


def test_the_sweeper_requeues_webhooks_whose_task_was_lost(
    client, account_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        post(client, account_a, message_body())
    assert inbound.inbound_webhook_requeue_stale() == 0  # too recent: its task may be on its way
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert inbound.inbound_webhook_requeue_stale() == 1
    assert InboundWebhook.objects.get().status == InboundWebhookStatus.PROCESSED
    assert Event.objects.exclude(event_type__startswith="lead.").count() == 1


# --- Transient and permanent failures -------------------------------------------------------
def payment_body(event_id="pay-evt-1") -> bytes:
    return json.dumps(
        {"event_id": event_id, "payments": [{"id": "pay_9", "status": "paid", "amount": "150.90"}]}
    ).encode()


def fail_with(exc):
    [on_payment] = inbound.handlers_of(PaymentUpdate)
    on_payment.state["fail"] = exc


def later(webhook, seconds=1):
    """A moment after the webhook's next attempt is due."""
    webhook.refresh_from_db()
    return time_machine.travel(webhook.next_attempt_at + timedelta(seconds=seconds), tick=False)


def test_a_provider_503_while_processing_is_retried_with_backoff_and_then_processed(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    fail_with(TransientProviderError("mercadopago.get_charge: HTTP 503", http_status=503))
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())

    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.RECEIVED  # not failed for good
    assert webhook.attempts == 1
    assert "HTTP 503" in webhook.error
    # The first backoff step: 15 to 30 s with the default 30 s base and its jitter.
    assert before + timedelta(seconds=15) <= webhook.next_attempt_at
    assert webhook.next_attempt_at <= timezone.now() + timedelta(seconds=30)

    inbound.inbound_webhook_process(webhook_id=webhook.pk)  # a retry that came early
    assert len(handler_calls) == 1

    fail_with(None)
    with later(webhook):
        inbound.inbound_webhook_process(webhook_id=webhook.pk)
    webhook.refresh_from_db()
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert webhook.error == ""
    assert len(handler_calls) == 2


def test_a_transient_error_is_enqueued_again_with_its_backoff_as_countdown(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    from integrations.tasks_inbound import inbound_webhook_process_task

    with django_capture_on_commit_callbacks(execute=False):
        post(client, account_a, payment_body())
    webhook = InboundWebhook.objects.get()
    fail_with(TransientProviderError("HTTP 429", http_status=429))
    with (
        mock.patch.object(inbound_webhook_process_task, "apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        inbound.inbound_webhook_process(webhook_id=webhook.pk)
    [call] = apply_async.call_args_list
    assert call.kwargs["args"] == [webhook.pk]
    assert call.kwargs["queue"] == "integrations-high"
    assert 15 <= call.kwargs["countdown"] <= 30


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("deadlock detected"),
        OperationalError("server closed the connection unexpectedly"),
        TransientProviderError("asaas.get_charge: timed out"),
    ],
    ids=["deadlock", "connection-lost", "provider-timeout"],
)
def test_database_and_provider_hiccups_are_transient(
    client, account_a, handler_calls, django_capture_on_commit_callbacks, error
):
    fail_with(error)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())
    webhook = InboundWebhook.objects.get()
    assert (webhook.status, webhook.attempts) == (InboundWebhookStatus.RECEIVED, 1)


def test_a_transient_error_fails_the_webhook_only_after_the_configured_attempts(
    client, account_a, handler_calls, settings, django_capture_on_commit_callbacks
):
    settings.CUIDAR_INBOUND_MAX_ATTEMPTS = 3
    fail_with(TransientProviderError("HTTP 502", http_status=502))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())
    webhook = InboundWebhook.objects.get()
    for attempts in (2, 3):
        assert webhook.status == InboundWebhookStatus.RECEIVED
        with later(webhook):
            inbound.inbound_webhook_process(webhook_id=webhook.pk)
        webhook.refresh_from_db()
        assert webhook.attempts == attempts

    assert webhook.status == InboundWebhookStatus.FAILED
    assert webhook.error.startswith("gave up after 3 attempts: TransientProviderError: HTTP 502")
    assert webhook.next_attempt_at is None
    assert len(handler_calls) == 3


def test_a_permanent_provider_error_fails_at_once_with_the_reason(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    fail_with(PermanentProviderError("mercadopago.get_charge: not found (HTTP 404)"))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())
    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.FAILED
    assert webhook.attempts == 0
    assert webhook.error == "PermanentProviderError: mercadopago.get_charge: not found (HTTP 404)"


def test_the_providers_redelivery_of_a_failed_webhook_is_processed_not_dropped(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    fail_with(PermanentProviderError("billing refused it"))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())
    assert InboundWebhook.objects.get().status == InboundWebhookStatus.FAILED

    fail_with(None)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, account_a, payment_body())  # the gateway delivers it again
    assert response.status_code == 200
    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert len(handler_calls) == 2


def test_the_providers_redelivery_of_a_webhook_waiting_for_a_retry_runs_it_now(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    fail_with(TransientProviderError("HTTP 503", http_status=503))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())
    fail_with(None)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())
    assert InboundWebhook.objects.get().status == InboundWebhookStatus.PROCESSED


def test_a_processed_webhook_delivered_again_is_still_a_duplicate(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            post(client, account_a, payment_body())
    assert len(handler_calls) == 1


def test_the_sweeper_requeues_a_retry_whose_task_was_lost(
    client, account_a, handler_calls, django_capture_on_commit_callbacks
):
    fail_with(TransientProviderError("HTTP 503", http_status=503))
    with django_capture_on_commit_callbacks(execute=False):
        post(client, account_a, payment_body())
    webhook = InboundWebhook.objects.get()
    with django_capture_on_commit_callbacks(execute=False):  # the retry task gets lost
        inbound.inbound_webhook_process(webhook_id=webhook.pk)
    fail_with(None)
    webhook.refresh_from_db()
    with time_machine.travel(webhook.next_attempt_at + timedelta(minutes=1), tick=False):
        assert inbound.inbound_webhook_requeue_stale() == 0  # its own task may still come
    with time_machine.travel(webhook.next_attempt_at + timedelta(minutes=6), tick=False):
        assert inbound.inbound_webhook_requeue_stale() == 1
    webhook.refresh_from_db()
    assert webhook.status == InboundWebhookStatus.PROCESSED


def test_processing_again_by_hand_gives_a_fresh_round_of_attempts(
    client, account_a, handler_calls, settings, django_capture_on_commit_callbacks
):
    settings.CUIDAR_INBOUND_MAX_ATTEMPTS = 1
    fail_with(TransientProviderError("HTTP 503", http_status=503))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account_a, payment_body())
    webhook = InboundWebhook.objects.get()
    assert (webhook.status, webhook.attempts) == (InboundWebhookStatus.FAILED, 1)

    settings.CUIDAR_INBOUND_MAX_ATTEMPTS = 2
    inbound.inbound_webhook_retry(webhook_id=webhook.pk)
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts) == (InboundWebhookStatus.RECEIVED, 1)


# --- Console (sandbox) providers ------------------------------------------------------------
@pytest.fixture
def console_whatsapp(clinic_a):
    return ProviderAccount.objects.create(clinic=clinic_a, kind="whatsapp", provider="console")


def post_json(client, account, data):
    return client.post(url_for(account), data=json.dumps(data), content_type="application/json")


def test_a_console_reply_becomes_message_inbound_once(
    client, console_whatsapp, django_capture_on_commit_callbacks
):
    reply = {"id": "m1", "from": "+5511999990000", "to": "+5511888880000", "text": "Confirmo"}
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert post_json(client, console_whatsapp, reply).status_code == 200

    webhook = InboundWebhook.objects.get()
    assert webhook.dedupe_key == f"console:{console_whatsapp.pk}:m1"
    assert webhook.status == InboundWebhookStatus.PROCESSED
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert event.event_type == "message.inbound"
    assert event.payload["provider_message_id"] == "m1"
    assert "Confirmo" not in json.dumps(event.payload)


def test_a_console_delivery_receipt_becomes_message_status(
    client, console_whatsapp, django_capture_on_commit_callbacks
):
    receipt = {"id": "s1", "status": "delivered", "message_id": "console-abc"}
    with django_capture_on_commit_callbacks(execute=True):
        post_json(client, console_whatsapp, receipt)
    event = Event.objects.exclude(event_type__startswith="lead.").get()
    assert (event.event_type, event.payload["status"]) == ("message.status", "delivered")
    assert event.payload["provider_message_id"] == "console-abc"


def test_a_console_payment_reaches_its_handler(
    client, clinic_a, handler_calls, django_capture_on_commit_callbacks
):
    payments = ProviderAccount.objects.create(clinic=clinic_a, kind="payments", provider="console")
    with django_capture_on_commit_callbacks(execute=True):
        post_json(client, payments, {"id": "evt1", "payment_id": "pay_c1", "status": "paid"})
    webhook = InboundWebhook.objects.get()
    assert webhook.account == payments
    assert handler_calls == [(webhook.pk, 0, "pay_c1")]


def test_a_malformed_console_body_is_kept_as_failed(client, console_whatsapp):
    response = post_json(client, console_whatsapp, {"id": "x1", "status": "teleported"})
    assert response.status_code == 200
    webhook = InboundWebhook.objects.get()
    assert webhook.status == InboundWebhookStatus.FAILED
    assert "unknown message status" in webhook.error
