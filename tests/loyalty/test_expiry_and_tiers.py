"""Expiry first in, first out, across partial redemptions, at month boundaries in the
clinic's time zone, with one consent-gated notice 30 days before; tiers up on an earn and
down at night."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from clinic import services as clinic_services
from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.messaging.models import OutboundMessage
from integrations.models import Event
from loyalty import services
from loyalty.choices import EntryKind, Tier
from loyalty.models import LoyaltyAccount, PointsEntry, Reward
from loyalty.tasks import points_expiry_task
from tests.clinic.factories import PatientFactory

from .conftest import give

pytestmark = pytest.mark.django_db
SP = ZoneInfo("America/Sao_Paulo")


def at(*args):
    return time_machine.travel(datetime(*args, tzinfo=SP), tick=False)


def balance(account):
    account.refresh_from_db()
    return account.balance


def test_add_months_keeps_the_day_or_takes_the_months_last():
    from datetime import date

    assert services.add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert services.add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert services.add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)


def test_points_expire_first_in_first_out_at_the_clinics_midnight(clinic_a, account):
    assert clinic_a.time_zone == "America/Sao_Paulo"
    reward = Reward.objects.create(clinic=clinic_a, name="R$ 7", points_cost=70, value=Decimal("7"))
    reward_small = Reward.objects.create(clinic=clinic_a, name="R$ 4", points_cost=40, value=4)
    with at(2025, 1, 31, 23, 30):  # 02:30 UTC on 01/02: a January lot at the clinic
        first = give(account, 100, "jan")
    with at(2025, 2, 1, 0, 30):
        second = give(account, 50, "feb")
    assert first.expires_at == datetime(2026, 2, 1, tzinfo=SP)
    assert second.expires_at == datetime(2026, 2, 2, tzinfo=SP)
    with at(2025, 6, 10, 10, 0):
        services.reward_redeem(account=account, reward=reward)  # 70 of January's 100
    with at(2026, 1, 31, 23, 59):
        points_expiry_task()
    assert balance(account) == 80  # January's lot is good through 31/01

    with at(2026, 2, 1, 0, 0, 30):
        points_expiry_task()
        points_expiry_task()  # a rerun expires nothing more
    assert balance(account) == 50
    [expired] = PointsEntry.objects.filter(account=account, kind=EntryKind.EXPIRE)
    assert (expired.points, expired.lot_id) == (-30, first.pk)

    with at(2026, 2, 1, 12, 0):
        services.reward_redeem(account=account, reward=reward_small)  # 40 of February's 50
    with at(2026, 2, 2, 0, 0, 30):
        points_expiry_task()
    assert balance(account) == 0
    assert sorted(
        PointsEntry.objects.filter(account=account, kind=EntryKind.EXPIRE).values_list(
            "points", flat=True
        )
    ) == [-30, -10]
    assert not services.accounts_reconcile(clinic=clinic_a)


def test_a_notice_goes_once_30_days_before_only_with_consent(
    clinic_a, program, maria, account, django_capture_on_commit_callbacks
):
    quiet = PatientFactory(clinic=clinic_a)
    quiet_account = services.account_for(quiet)
    clinic_services.consent_record(
        patient=maria,
        channel=ContactChannel.WHATSAPP,
        purpose=ConsentPurpose.MARKETING,
        status=ConsentStatus.GRANTED,
    )
    with at(2025, 3, 10, 10, 0):
        give(account, 100, "march")
        give(quiet_account, 100, "march")
    with at(2026, 2, 1, 10, 0):  # 39 days before: not yet
        points_expiry_task()
    assert not OutboundMessage.objects.filter(template="pontos_expirando").exists()

    with at(2026, 2, 10, 10, 0), django_capture_on_commit_callbacks(execute=True):
        points_expiry_task()  # 29 days before
        points_expiry_task()
    [notice] = OutboundMessage.objects.filter(template="pontos_expirando", patient=maria)
    assert "100" in notice.body and "10/03/2026" in notice.body
    assert notice.status == "sent"
    # No marketing consent: recorded, never sent.
    assert OutboundMessage.objects.get(patient=quiet).status == "not_sent"


def test_a_tier_goes_up_on_an_earn_and_down_at_night(clinic_a, account):
    with at(2025, 3, 1, 10, 0):
        give(account, 600, "big")
    account.refresh_from_db()
    assert (account.tier, account.earned_12m) == (Tier.SILVER, 600)
    up = Event.objects.get(event_type="loyalty.tier_changed")
    assert (up.payload["from"], up.payload["to"], up.payload["direction"]) == (
        "bronze",
        "silver",
        "up",
    )

    with at(2026, 2, 27, 2, 0):
        assert services.tiers_evaluate(clinic=clinic_a) == 0  # still within 12 months
    with at(2026, 3, 2, 2, 0):
        assert services.tiers_evaluate(clinic=clinic_a) == 1
    account.refresh_from_db()
    assert (account.tier, account.earned_12m) == (Tier.BRONZE, 0)
    assert account.balance == 600  # a downgrade takes no points
    down = Event.objects.filter(event_type="loyalty.tier_changed").latest("created_at")
    assert down.payload["direction"] == "down"


def test_the_nightly_evaluation_reads_in_constant_queries_plus_each_changes_event(
    clinic_a, program, django_assert_max_num_queries
):
    accounts = [services.account_for(PatientFactory(clinic=clinic_a)) for _ in range(30)]
    for i, account in enumerate(accounts):
        give(account, 600 if i % 2 else 100, f"k{i}")
    LoyaltyAccount.objects.filter(clinic=clinic_a).update(tier=Tier.GOLD)  # stale tiers

    # A few reads and one UPDATE per batch, whatever the number of accounts; each tier that
    # changed publishes its event (two statements: integrations.events.publish).
    with django_assert_max_num_queries(8 + 2 * 30):
        moved = services.tiers_evaluate(clinic=clinic_a)

    assert moved == 30
    assert LoyaltyAccount.objects.filter(tier=Tier.SILVER).count() == 15
