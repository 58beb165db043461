"""Admin of inbound webhooks (read-only, "process again") and partner webhook subscriptions
(secret shown once, rotation, test ping): scoped to the user's clinic like every admin."""

import json

import pytest
import responses
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations import inbound, subscriptions
from integrations.base import PaymentUpdate
from integrations.choices import InboundWebhookStatus
from integrations.models import InboundWebhook, ProviderAccount, WebhookSubscription

pytestmark = pytest.mark.django_db

PARTNER_URL = "https://lab.parceiro.example/webhooks"


def grant(user, *codenames):
    """Give permissions explicitly, so these tests do not depend on which role holds them."""
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="integrations", codename__in=codenames)
    )
    # Permissions are cached on the user object; a fresh one reads them again.
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def operator_a(admin_a):
    return grant(
        admin_a,
        "view_inboundwebhook",
        "change_inboundwebhook",
        "view_webhooksubscription",
        "add_webhooksubscription",
        "change_webhooksubscription",
    )


@pytest.fixture
def viewer_b(receptionist_b):
    return grant(receptionist_b, "view_inboundwebhook", "view_webhooksubscription")


def make_webhook(clinic, key, *, body=b'{"id": "m1"}', status=InboundWebhookStatus.PROCESSED, **kw):
    return InboundWebhook.objects.create(
        clinic=clinic,
        provider="console",
        body=body,
        content_type="application/json",
        dedupe_key=key,
        status=status,
        **kw,
    )


@pytest.fixture
def webhook_a(clinic_a):
    return make_webhook(clinic_a, "console:1:a-1")


@pytest.fixture
def webhook_b(clinic_b):
    return make_webhook(clinic_b, "console:2:b-1")


@pytest.fixture
def subscription_a(clinic_a):
    return subscriptions.subscription_create(
        clinic=clinic_a, name="Laboratório Alfa", url=PARTNER_URL, event_types=[]
    )


@pytest.fixture
def subscription_b(clinic_b):
    return subscriptions.subscription_create(
        clinic=clinic_b, name="Laboratório Beta", url=PARTNER_URL, event_types=[]
    )


def url(model, view, *args):
    return reverse(f"admin:integrations_{model}_{view}", args=args)


def page(response) -> str:
    return response.content.decode()


# --- Inbound webhooks -----------------------------------------------------------------------
def test_a_malformed_webhook_is_visible_as_failed_with_its_reason(clinic_a, operator_a, client_for):
    account = ProviderAccount.objects.create(clinic=clinic_a, kind="whatsapp", provider="console")
    hook = reverse("webhooks:receive", args=["console", account.webhook_token])
    raw = b"<xml>not what we expected</xml>"
    assert client_for(operator_a).post(hook, raw, content_type="text/xml").status_code == 200
    webhook = InboundWebhook.objects.get()

    client = client_for(operator_a)
    listing = client.get(url("inboundwebhook", "changelist"), {"status__exact": "failed"})
    assert list(listing.context["cl"].result_list) == [webhook]

    detail = page(client.get(url("inboundwebhook", "change", webhook.pk)))
    assert "body is not JSON" in detail  # the reason
    assert "&lt;xml&gt;not what we expected&lt;/xml&gt;" in detail  # the body, escaped
    assert "text/xml" in detail


def test_a_json_body_is_shown_pretty_printed(clinic_a, operator_a, client_for):
    webhook = make_webhook(
        clinic_a, "console:1:pretty", body=json.dumps({"id": "m1", "text": "Olá"}).encode()
    )
    detail = page(client_for(operator_a).get(url("inboundwebhook", "change", webhook.pk)))
    assert "{\n  &quot;id&quot;: &quot;m1&quot;,\n  &quot;text&quot;: &quot;Olá&quot;\n}" in detail
    assert "errornote" not in detail


def test_the_reason_is_only_shown_for_failed_webhooks(clinic_a, operator_a, client_for):
    webhook = make_webhook(clinic_a, "console:1:ok", error="")
    response = client_for(operator_a).get(url("inboundwebhook", "change", webhook.pk))
    fields = [f for _name, opts in response.context["adminform"].fieldsets for f in opts["fields"]]
    assert "error" not in fields
    assert "body_display" in fields


def test_stored_requests_cannot_be_added_edited_or_deleted(webhook_a, operator_a, client_for):
    client = client_for(operator_a)
    assert client.get(url("inboundwebhook", "add")).status_code == 403
    assert client.post(url("inboundwebhook", "change", webhook_a.pk), {}).status_code == 403
    assert (
        client.post(url("inboundwebhook", "delete", webhook_a.pk), {"post": "yes"}).status_code
        == 403
    )
    assert InboundWebhook.objects.filter(pk=webhook_a.pk).exists()


@pytest.fixture
def flaky_payment_handler():
    state = {"fail": True}

    def on_payment(item, *, webhook, index):
        if state["fail"]:
            raise RuntimeError("billing is down")

    inbound.inbound_handler(PaymentUpdate)(on_payment)
    yield state
    inbound.inbound_handler_remove(PaymentUpdate, on_payment)


def test_process_again_processes_failed_webhooks(
    clinic_a, operator_a, client_for, flaky_payment_handler, django_capture_on_commit_callbacks
):
    account = ProviderAccount.objects.create(clinic=clinic_a, kind="payments", provider="console")
    hook = reverse("webhooks:receive", args=["console", account.webhook_token])
    body = {"id": "evt-1", "payment_id": "pay_1", "status": "paid"}
    with django_capture_on_commit_callbacks(execute=True):
        client_for(operator_a).post(hook, json.dumps(body), content_type="application/json")
    webhook = InboundWebhook.objects.get()
    assert (webhook.status, webhook.error) == ("failed", "RuntimeError: billing is down")

    flaky_payment_handler["fail"] = False
    response = client_for(operator_a).post(
        url("inboundwebhook", "changelist"),
        {"action": "process_again", "_selected_action": [webhook.pk]},
        follow=True,
    )
    webhook.refresh_from_db()
    assert webhook.status == InboundWebhookStatus.PROCESSED
    assert "1 webhook processado novamente." in [str(m) for m in response.context["messages"]]


def test_process_again_reports_what_still_fails(clinic_a, operator_a, client_for):
    account = ProviderAccount.objects.create(clinic=clinic_a, kind="whatsapp", provider="console")
    failed = make_webhook(
        clinic_a,
        "console:1:bad",
        body=b"not json",
        status=InboundWebhookStatus.FAILED,
        account=account,
    )
    response = client_for(operator_a).post(
        url("inboundwebhook", "changelist"),
        {"action": "process_again", "_selected_action": [failed.pk]},
        follow=True,
    )
    failed.refresh_from_db()
    assert failed.status == InboundWebhookStatus.FAILED
    assert failed.error == "body is not JSON"
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["O webhook console:1:bad falhou novamente: body is not JSON"]


def offered_actions(response) -> list[str]:
    form = response.context["action_form"]  # None when no action is available at all
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_only_users_who_may_change_webhooks_are_offered_process_again(
    webhook_a, webhook_b, operator_a, viewer_b, client_for
):
    changelist = url("inboundwebhook", "changelist")
    assert "process_again" in offered_actions(client_for(operator_a).get(changelist))
    assert "process_again" not in offered_actions(client_for(viewer_b).get(changelist))


def test_the_inbound_changelist_query_count_does_not_grow_with_rows(
    clinic_a, operator_a, client_for
):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url("inboundwebhook", "changelist")).status_code == 200
        return len(queries)

    client = client_for(operator_a)
    make_webhook(clinic_a, "console:1:q0")
    few = count()
    for i in range(1, 15):
        make_webhook(clinic_a, f"console:1:q{i}")
    assert count() == few


# --- Subscriptions --------------------------------------------------------------------------
def test_the_secret_is_shown_once_after_creation_and_masked_afterwards(
    clinic_a, operator_a, client_for
):
    client = client_for(operator_a)
    response = client.post(
        url("webhooksubscription", "add"),
        {
            "name": "CRM",
            "url": "https://crm.example/hooks",
            "event_types": ["patient.created", "appointment.booked"],
            "active": "on",
            "_save": "Save",
        },
        follow=True,
    )
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    secret = subscription.signing_secret
    assert secret.startswith("whsec_")
    assert subscription.clinic == clinic_a
    assert subscription.event_types == ["appointment.booked", "patient.created"]
    assert secret in page(response)  # once, in the message after creation

    for later in (
        client.get(url("webhooksubscription", "change", subscription.pk)),
        client.get(url("webhooksubscription", "changelist")),
        client.get(url("webhooksubscription", "history", subscription.pk)),
        client.get(url("webhooksubscription", "change", subscription.pk)),
    ):
        assert later.status_code == 200
        assert secret not in page(later)
    assert secret[-4:] in page(client.get(url("webhooksubscription", "changelist")))  # masked


def test_editing_keeps_the_secret_and_never_shows_it(subscription_a, operator_a, client_for):
    secret = subscription_a.signing_secret
    response = client_for(operator_a).post(
        url("webhooksubscription", "change", subscription_a.pk),
        {"name": "Laboratório Alfa 2", "url": PARTNER_URL, "event_types": ["invoice.issued"]},
        follow=True,
    )
    assert secret not in page(response)
    subscription_a.refresh_from_db()
    assert subscription_a.signing_secret == secret
    assert (subscription_a.name, subscription_a.active) == ("Laboratório Alfa 2", False)
    assert subscription_a.event_types == ["invoice.issued"]


def test_the_form_offers_the_event_catalogue_only(operator_a, client_for):
    response = client_for(operator_a).post(
        url("webhooksubscription", "add"),
        {"name": "CRM", "url": "https://crm.example/hooks", "event_types": ["patient.teleported"]},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "event_types" in response.context["adminform"].form.errors
    assert WebhookSubscription.objects.count() == 0


def test_rotating_shows_the_new_secret_once(subscription_a, operator_a, client_for):
    old = subscription_a.signing_secret
    client = client_for(operator_a)
    response = client.post(
        url("webhooksubscription", "changelist"),
        {"action": "rotate_secret", "_selected_action": [subscription_a.pk]},
        follow=True,
    )
    subscription_a.refresh_from_db()
    new = subscription_a.signing_secret
    assert new != old
    assert new in page(response)
    assert old not in page(response)
    assert new not in page(client.get(url("webhooksubscription", "change", subscription_a.pk)))


@responses.activate
def test_a_test_ping_is_sent_by_a_worker_and_its_answer_shown(
    subscription_a, operator_a, client_for, django_capture_on_commit_callbacks
):
    responses.post(PARTNER_URL, status=500)
    client = client_for(operator_a)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            url("webhooksubscription", "changelist"),
            {"action": "send_test_ping", "_selected_action": [subscription_a.pk]},
            follow=True,
        )
    assert "está a caminho" in str(next(iter(response.context["messages"])))
    assert len(responses.calls) == 0  # the admin's request did not wait on the partner
    assert "aguardando a resposta" in page(client.get(url("webhooksubscription", "changelist")))
    for callback in queued:
        callback()
    assert len(responses.calls) == 1
    assert responses.calls[0].request.headers["X-Cuidar-Event"] == "ping"
    assert "Laboratório Alfa respondeu HTTP 500." in page(
        client.get(url("webhooksubscription", "changelist"))
    )
