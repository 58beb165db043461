"""Admin of provider accounts, the call log and console records: secrets never shown back,
credentials validated, health check, scoping per clinic, flat query counts."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations import registry
from integrations.base import HealthResult, MessagingProvider, TransientProviderError
from integrations.models import ConsoleRecord, ExternalCall, ProviderAccount

pytestmark = pytest.mark.django_db

TOKEN = "zz-live-token-abcdef123456"
PERMISSIONS = [
    "view_provideraccount",
    "add_provideraccount",
    "change_provideraccount",
    "view_externalcall",
    "view_consolerecord",
]


class VaultWhatsApp(MessagingProvider):
    """A provider with credentials, whose probe fails when told to."""

    kind = "whatsapp"
    name = "test_vault"
    label = "Vault (test)"
    credentials_schema = {"token": "API token", "instance_id": "Instance"}
    failing = False

    def health(self):
        if self.failing:
            raise TransientProviderError(f"HTTP 503 while using {self.credentials['token']}")
        return HealthResult(ok=True, detail="instance connected")


@pytest.fixture
def client_for(client_for, settings):
    """Clients that read the admin in English: these tests check the source strings, which
    the pt-BR catalogue translates later."""

    def make(user):
        client = client_for(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return make


@pytest.fixture(autouse=True)
def vault_provider():
    registry.register(VaultWhatsApp)
    yield
    registry._registry.pop(("whatsapp", "test_vault"), None)
    VaultWhatsApp.failing = False


def grant(user):
    user.user_permissions.add(*Permission.objects.filter(codename__in=PERMISSIONS))
    return user


@pytest.fixture
def staff_a(admin_a):
    return grant(admin_a)


@pytest.fixture
def staff_b(receptionist_b):
    # Same permissions as A's staff: what hides A's rows from B is the scoping alone.
    return grant(receptionist_b)


@pytest.fixture
def account_a(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="test_vault",
        label="WhatsApp da recepção",
        credentials={"token": TOKEN, "instance_id": "inst-778899"},
    )


def url(name, *args):
    return reverse(f"admin:integrations_{name}", args=args)


def form_data(account=None, **overrides):
    data = {
        "kind": "whatsapp",
        "provider": "test_vault",
        "label": "WhatsApp",
        "priority": "10",
        "enabled": "on",
        "settings": "{}",
        "new_credentials": "",
    }
    if account is not None:
        data.update(
            kind=account.kind,
            provider=account.provider,
            label=account.label,
            priority=str(account.priority),
        )
    data.update(overrides)
    return data


# --- Secrets ------------------------------------------------------------------------------------
def test_the_change_page_shows_credentials_masked_never_in_full(account_a, staff_a, client_for):
    response = client_for(staff_a).get(url("provideraccount_change", account_a.pk))

    assert response.status_code == 200
    content = response.content.decode()
    assert TOKEN not in content
    assert "inst-778899" not in content
    assert "••••3456" in content
    assert "••••8899" in content
    assert f"/webhooks/test_vault/{account_a.webhook_token}/" in content


def test_the_changelist_never_shows_credentials(account_a, staff_a, client_for):
    response = client_for(staff_a).get(url("provideraccount_changelist"))

    assert response.status_code == 200
    assert TOKEN not in response.content.decode()
    assert list(response.context["cl"].result_list) == [account_a]


def test_saving_without_new_credentials_keeps_the_stored_ones(account_a, staff_a, client_for):
    response = client_for(staff_a).post(
        url("provideraccount_change", account_a.pk), form_data(account_a, label="Outro nome")
    )

    assert response.status_code == 302
    account_a.refresh_from_db()
    assert account_a.label == "Outro nome"
    assert account_a.credentials == {"token": TOKEN, "instance_id": "inst-778899"}


def test_new_credentials_replace_the_stored_ones(account_a, staff_a, client_for):
    response = client_for(staff_a).post(
        url("provideraccount_change", account_a.pk),
        form_data(account_a, new_credentials='{"token": "new-token-000111"}'),
    )

    assert response.status_code == 302
    account_a.refresh_from_db()
    assert account_a.credentials == {"token": "new-token-000111"}


def test_staff_add_an_account_to_their_own_clinic(clinic_a, staff_a, client_for):
    response = client_for(staff_a).post(
        url("provideraccount_add"),
        form_data(new_credentials='{"token": "t-123456789", "instance_id": "i-1"}'),
    )

    assert response.status_code == 302
    account = ProviderAccount.objects.get()
    assert account.clinic == clinic_a
    assert account.credentials == {"token": "t-123456789", "instance_id": "i-1"}


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ('{"token": "typed-secret-999888", ', "not valid JSON"),
        ('["typed-secret-999888"]', "Enter a JSON object"),
        ('{"token": "typed-secret-999888", "password": "x"}', "Unknown keys: password"),
        ('{"token": 999888777666}', "Values must be text"),
    ],
)
def test_bad_credentials_get_a_clear_error_and_are_not_echoed_back(
    typed, message, account_a, staff_a, client_for
):
    response = client_for(staff_a).post(
        url("provideraccount_change", account_a.pk), form_data(account_a, new_credentials=typed)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["new_credentials"]
    assert message in " ".join(errors)
    content = response.content.decode()
    assert "999888" not in content
    assert TOKEN not in content
    account_a.refresh_from_db()
    assert account_a.credentials["token"] == TOKEN


def test_the_expected_keys_are_named_when_unknown_keys_are_given(account_a, staff_a, client_for):
    response = client_for(staff_a).post(
        url("provideraccount_change", account_a.pk),
        form_data(account_a, new_credentials='{"apikey": "x-1234"}'),
    )

    (error,) = response.context["adminform"].form.errors["new_credentials"]
    assert "instance_id, token" in error


def test_it_refuses_a_provider_that_does_not_serve_the_kind(staff_a, client_for):
    response = client_for(staff_a).post(
        url("provideraccount_add"), form_data(kind="sms", provider="test_vault")
    )

    assert response.status_code == 200
    assert "provider" in response.context["adminform"].form.errors
    assert not ProviderAccount.objects.exists()


def test_switching_provider_asks_for_the_new_providers_credentials(account_a, staff_a, client_for):
    response = client_for(staff_a).post(
        url("provideraccount_change", account_a.pk), form_data(account_a, provider="console")
    )

    assert response.status_code == 200
    assert "new_credentials" in response.context["adminform"].form.errors


def test_the_provider_choices_come_from_the_registry(staff_a, client_for):
    response = client_for(staff_a).get(url("provideraccount_add"))

    choices = response.context["adminform"].form.fields["provider"].choices
    names = {name for _group, options in choices[1:] for name, _label in options}
    assert {"console", "test_vault"} <= names


# --- Health check -------------------------------------------------------------------------------
def run_health_check(client, *accounts):
    return client.post(
        url("provideraccount_changelist"),
        {"action": "run_health_check", "_selected_action": [a.pk for a in accounts]},
        follow=True,
    )


def test_the_health_check_reports_what_the_provider_said(account_a, staff_a, client_for):
    response = run_health_check(client_for(staff_a), account_a)

    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "healthy" in message
    assert "instance connected" in message


def test_a_failing_health_check_is_reported_without_the_secret(account_a, staff_a, client_for):
    VaultWhatsApp.failing = True

    response = run_health_check(client_for(staff_a), account_a)

    (message,) = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"
    assert "HTTP 503" in str(message)
    assert TOKEN not in str(message)
    assert TOKEN not in response.content.decode()


# --- Scoping ------------------------------------------------------------------------------------
@pytest.fixture
def rows_of_a(clinic_a, account_a):
    return {
        "provideraccount": account_a,
        "externalcall": ExternalCall.objects.create(
            clinic=clinic_a, account=account_a, provider="test_vault", operation="send",
            method="POST", host="api.example", status_code=200, succeeded=True,
        ),
        "consolerecord": ConsoleRecord.objects.create(
            clinic=clinic_a, kind="sms", provider="console", operation="send",
            recipient="+5511999990000", payload={"text": "Oi"},
        ),
    }  # fmt: skip


MODELS = ["provideraccount", "externalcall", "consolerecord"]


@pytest.mark.parametrize("model", MODELS)
def test_it_shows_own_clinics_rows(model, rows_of_a, staff_a, client_for):
    response = client_for(staff_a).get(url(f"{model}_changelist"))

    assert list(response.context["cl"].result_list) == [rows_of_a[model]]


@pytest.mark.parametrize("model", ["externalcall", "consolerecord"])
def test_logs_are_read_only(model, rows_of_a, client_for, superuser):
    client = client_for(superuser)
    pk = rows_of_a[model].pk

    assert client.get(url(f"{model}_add")).status_code == 403
    assert client.get(url(f"{model}_delete", pk)).status_code == 403
    response = client.get(url(f"{model}_change", pk))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]


def test_the_console_record_shows_what_would_have_been_sent(rows_of_a, staff_a, client_for):
    record = rows_of_a["consolerecord"]
    response = client_for(staff_a).get(url("consolerecord_change", record.pk))

    assert "&quot;text&quot;: &quot;Oi&quot;" in response.content.decode()


# --- Query counts -------------------------------------------------------------------------------
def make_rows(model, clinic, count):
    for i in range(count):
        account = ProviderAccount.objects.create(
            clinic=clinic, kind="whatsapp", provider="test_vault", priority=i, label=f"n{i}"
        )
        if model == "externalcall":
            ExternalCall.objects.create(
                clinic=clinic, account=account, provider="test_vault", operation="send",
                method="POST", host="api.example", status_code=500, error_class="ServerError",
            )  # fmt: skip
        if model == "consolerecord":
            ConsoleRecord.objects.create(
                clinic=clinic, kind="sms", provider="console", operation="send", recipient=str(i)
            )


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("viewer", ["staff_a", "superuser"])
def test_changelist_queries_do_not_grow_with_rows(model, viewer, clinic_a, client_for, request):
    client = client_for(request.getfixturevalue(viewer))
    make_rows(model, clinic_a, 3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(f"{model}_changelist")).status_code == 200
    make_rows(model, clinic_a, 27)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url(f"{model}_changelist"))

    assert len(response.context["cl"].result_list) == 30
    assert len(many) == len(few)
