"""Secrets at rest: encrypted columns, key rotation and ``manage.py rotate_credentials``."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core import serializers
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.crypto import mask
from integrations.models import ProviderAccount, WebhookSubscription

pytestmark = pytest.mark.django_db

SECRET = "sk_live_9f8e7d6c5b4a"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def raw_credentials(account) -> str:
    return raw_column("integrations_provideraccount", "credentials", account.pk)


def raw_secret(subscription) -> str:
    return raw_column("integrations_webhooksubscription", "secret", subscription.pk)


@pytest.fixture
def account(clinic_a, settings):
    settings.CUIDAR_FERNET_KEYS = [OLD_KEY]
    return ProviderAccount.objects.create(
        clinic=clinic_a, kind="payments", provider="asaas", credentials={"api_key": SECRET}
    )


@pytest.fixture
def subscription(clinic_a, settings):
    settings.CUIDAR_FERNET_KEYS = [OLD_KEY]
    return WebhookSubscription.objects.create(
        clinic=clinic_a, name="ERP", url="https://erp.example/hook", secret={"value": SECRET}
    )


def test_credentials_are_encrypted_in_the_database_column(account):
    raw = raw_credentials(account)

    assert SECRET not in raw
    assert "api_key" not in raw
    assert Fernet(OLD_KEY).decrypt(raw.encode()) == f'{{"api_key": "{SECRET}"}}'.encode()
    assert ProviderAccount.objects.get().credentials == {"api_key": SECRET}


def test_serialising_an_account_never_writes_the_secret_in_clear(account):
    dumped = serializers.serialize("json", [account])

    assert SECRET not in dumped


def test_empty_credentials_are_stored_as_an_empty_string(clinic_a):
    account = ProviderAccount.objects.create(clinic=clinic_a, kind="sms", provider="console")

    assert raw_credentials(account) == ""
    assert ProviderAccount.objects.get().credentials == {}


def test_an_older_key_still_decrypts_after_a_new_first_key_is_added(account, settings):
    settings.CUIDAR_FERNET_KEYS = [NEW_KEY, OLD_KEY]

    assert ProviderAccount.objects.get().credentials == {"api_key": SECRET}


def test_a_removed_key_fails_loudly_instead_of_returning_nothing(account, settings):
    settings.CUIDAR_FERNET_KEYS = [NEW_KEY]

    with pytest.raises(ImproperlyConfigured, match="rotate_credentials"):
        ProviderAccount.objects.get()


def test_rotate_credentials_re_encrypts_every_secret_with_the_new_key(
    account, subscription, settings
):
    empty = ProviderAccount.objects.create(clinic=account.clinic, kind="sms", provider="console")
    settings.CUIDAR_FERNET_KEYS = [NEW_KEY, OLD_KEY]
    out = StringIO()

    call_command("rotate_credentials", stdout=out)

    assert "integrations.ProviderAccount: 1 row(s)" in out.getvalue()
    assert "integrations.WebhookSubscription: 1 row(s)" in out.getvalue()
    assert "2 row(s) in all" in out.getvalue()
    for raw in (raw_credentials(account), raw_secret(subscription)):
        assert SECRET not in raw
        assert Fernet(NEW_KEY).decrypt(raw.encode())
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(raw.encode())
    assert raw_credentials(empty) == ""
    # The old key can go now.
    settings.CUIDAR_FERNET_KEYS = [NEW_KEY]
    assert ProviderAccount.objects.get(pk=account.pk).credentials == {"api_key": SECRET}
    assert WebhookSubscription.objects.get().signing_secret == SECRET


def test_rotate_credentials_changes_nothing_when_a_row_cannot_be_decrypted(account, settings):
    before = raw_credentials(account)
    settings.CUIDAR_FERNET_KEYS = [NEW_KEY]  # the old key was removed too early

    with pytest.raises(CommandError, match=f"ProviderAccount {account.pk}"):
        call_command("rotate_credentials", stdout=StringIO())

    assert raw_credentials(account) == before


def test_mask_shows_only_the_last_four_characters():
    assert mask(SECRET) == "••••5b4a"
    assert mask("short") == "•••••"
    assert mask("") == ""
