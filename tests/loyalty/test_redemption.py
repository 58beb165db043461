"""Redemption: one transaction; 20 at once against a balance for 3 → exactly 3 vouchers;
stock runs out cleanly; the medical switch offers discounts only; a cancelled voucher
gives its points back."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from loyalty import services
from loyalty.exceptions import NotEnoughPoints, RewardUnavailable
from loyalty.models import PointsEntry, Redemption, Reward

from .conftest import give


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_redemptions_with_a_balance_for_three_give_exactly_three(
    account, voucher_reward
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    give(account, 300, "seed")
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def redeem():
        try:
            start.wait()
            services.reward_redeem(account=account, reward=voucher_reward)
            result = "ok"
        except NotEnoughPoints:
            result = "refused"
        except Exception as exc:  # anything else is a failure of the test
            result = repr(exc)
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=redeem) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 17
    account.refresh_from_db()
    assert account.balance == 0
    assert Redemption.objects.filter(account=account).count() == 3
    assert sum(PointsEntry.objects.filter(account=account).values_list("points", flat=True)) == 0


@pytest.mark.django_db
def test_a_redemption_takes_the_stock_and_refuses_when_it_is_gone(clinic_a, account):
    reward = Reward.objects.create(
        clinic=clinic_a, name="Kit", points_cost=10, value=Decimal("5"), stock=1
    )
    give(account, 100, "seed")
    services.reward_redeem(account=account, reward=reward)
    reward.refresh_from_db()
    assert reward.stock == 0

    with pytest.raises(RewardUnavailable, match="out of stock"):
        services.reward_redeem(account=account, reward=reward)
    account.refresh_from_db()
    assert account.balance == 90  # the refused one took nothing


@pytest.mark.django_db
def test_a_medical_clinic_offers_discounts_only(clinic_a, account, program):
    program.medical_mode = True
    program.save()
    service = Reward.objects.create(
        clinic=clinic_a, name="Limpeza de pele", reward_type="service", points_cost=10, value=1
    )
    give(account, 100, "seed")
    with pytest.raises(RewardUnavailable):
        services.reward_redeem(account=account, reward=service)


@pytest.mark.django_db
def test_a_cancelled_voucher_gives_its_points_and_stock_back(clinic_a, account):
    reward = Reward.objects.create(
        clinic=clinic_a, name="Kit", points_cost=40, value=Decimal("5"), stock=2
    )
    give(account, 100, "seed")
    redemption = services.reward_redeem(account=account, reward=reward)
    services.redemption_cancel(redemption=redemption)

    account.refresh_from_db()
    reward.refresh_from_db()
    assert account.balance == 100 and reward.stock == 2
    with pytest.raises(RewardUnavailable):
        services.redemption_cancel(redemption=redemption)
