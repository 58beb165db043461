"""The points ledger: append-only (in Python, and in PostgreSQL itself), a balance that is
the ledger's sum and never below zero, manager-only adjustments that are audited."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from clinic.models import AuditEntry
from loyalty import services
from loyalty.choices import EntryKind
from loyalty.exceptions import LoyaltyError, NotEnoughPoints
from loyalty.models import LoyaltyAccount, PointsEntry

from .conftest import give

pytestmark = pytest.mark.django_db


def test_an_earning_rule_credits_once_per_source(account):
    give(account, 100, "payment:1:earn")
    give(account, 100, "payment:1:earn")  # the same source again

    account.refresh_from_db()
    assert account.balance == 100
    assert PointsEntry.objects.filter(account=account).count() == 1


def test_entries_refuse_to_be_changed_or_deleted_in_python(account):
    entry = give(account, 10, "k1")
    entry.points = 1000
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        PointsEntry.objects.filter(pk=entry.pk).update(points=1000)
    with pytest.raises(TypeError):
        PointsEntry.objects.filter(pk=entry.pk).delete()


@pytest.mark.postgres
def test_the_database_refuses_update_and_delete_of_an_entry(account):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    entry = give(account, 10, "k1")
    for sql in (
        "UPDATE loyalty_pointsentry SET points = 1000 WHERE id = %s",
        "DELETE FROM loyalty_pointsentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
    assert PointsEntry.objects.get(pk=entry.pk).points == 10


def test_the_balance_never_goes_below_zero(account):
    give(account, 10, "k1")
    with pytest.raises(NotEnoughPoints), transaction.atomic():
        locked = services.account_lock(account)
        services.entry_add(locked, kind=EntryKind.REDEEM, points=-11, reason="x", source_key="r1")
    account.refresh_from_db()
    assert account.balance == 10


def test_the_database_refuses_a_negative_cached_balance(account):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        LoyaltyAccount.objects.filter(pk=account.pk).update(balance=-1)


def test_reconcile_finds_and_fixes_a_cache_written_around_the_services(account):
    give(account, 30, "k1")
    LoyaltyAccount.objects.filter(pk=account.pk).update(balance=999)

    [mismatch] = services.accounts_reconcile(clinic=account.clinic)
    assert (mismatch.cached, mismatch.ledger) == (999, 30)
    services.accounts_reconcile(clinic=account.clinic, fix=True)
    assert services.accounts_reconcile(clinic=account.clinic) == []
    account.refresh_from_db()
    assert account.balance == 30


def test_a_manual_adjustment_needs_a_reason_and_is_audited(account, manager_a):
    with pytest.raises(LoyaltyError):
        services.points_adjust(account=account, points=50, reason=" ", by=manager_a)

    entry = services.points_adjust(
        account=account, points=50, reason="Compensação por atraso", by=manager_a
    )

    account.refresh_from_db()
    assert account.balance == 50
    assert entry.kind == EntryKind.ADJUST and entry.created_by == manager_a
    audit = AuditEntry.objects.get(action="loyalty.adjust")
    assert audit.actor_id == manager_a.pk
    assert audit.details["reason"] == "Compensação por atraso"


def test_the_reconcile_command_fails_on_a_mismatch_and_fixes_it(account):
    from django.core.management import call_command

    give(account, 30, "k1")
    LoyaltyAccount.objects.filter(pk=account.pk).update(balance=7)
    with pytest.raises(SystemExit):
        call_command("loyalty_reconcile")
    call_command("loyalty_reconcile", "--fix")
    call_command("loyalty_reconcile")  # clean now
    account.refresh_from_db()
    assert account.balance == 30
