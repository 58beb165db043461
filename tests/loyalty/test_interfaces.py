"""What people see: the patient's points page (balance, tier and progress, history,
rewards and redemption, referral link and referrals), the desk's account page (redeem for
the patient; a manager adjusts), the voucher typed at the payment desk, and the partner
API's balance and history behind their scope."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Payment
from loyalty import services
from loyalty.models import Redemption, Referral, Reward
from tests.clinic.factories import PatientFactory
from tests.clinic.partner_api.helpers import key_client

from .conftest import give

pytestmark = pytest.mark.django_db


@pytest.fixture
def points_page(maria, account, portal_client_for):
    client = portal_client_for(maria)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


# --- Portal ---------------------------------------------------------------------------------
def test_the_patient_sees_balance_tier_progress_history_rewards_and_referrals(
    clinic_a, account, voucher_reward, points_page, django_assert_max_num_queries
):
    give(account, 120, "seed")
    Referral.objects.create(
        clinic=clinic_a, referrer=account, referred_patient=PatientFactory(clinic=clinic_a)
    )
    with django_assert_max_num_queries(25):
        page = points_page.get(reverse("portal:points"))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="balance">120<' in html
    assert "380 points to the next tier" in html  # silver at 500
    assert "R$ 20 de desconto" in html and "teste" in html
    assert account.referral_code in html and "wa.me" in html
    assert "Waiting for the first visit" in html


def test_the_patient_redeems_a_reward_and_gets_a_voucher(account, voucher_reward, points_page):
    give(account, 150, "seed")
    answer = points_page.post(reverse("portal:points"), {"reward": voucher_reward.pk}, follow=True)

    redemption = Redemption.objects.get(account=account)
    assert redemption.channel == "portal"
    assert redemption.code in answer.content.decode()
    account.refresh_from_db()
    assert account.balance == 50


def test_the_portal_refuses_without_enough_points_and_writes_nothing(
    account, voucher_reward, points_page
):
    give(account, 99, "seed")
    answer = points_page.post(reverse("portal:points"), {"reward": voucher_reward.pk}, follow=True)

    assert "costs 100 points" in answer.content.decode()
    assert not Redemption.objects.exists()


def test_the_portal_never_redeems_another_clinics_reward(account, clinic_b, points_page):
    theirs = Reward.objects.create(clinic=clinic_b, name="Deles", points_cost=1, value=1)
    give(account, 150, "seed")
    answer = points_page.post(reverse("portal:points"), {"reward": theirs.pk}, follow=True)

    assert "no longer offered" in answer.content.decode()
    assert not Redemption.objects.exists()


# --- Admin ----------------------------------------------------------------------------------
def test_the_desk_redeems_for_the_patient_and_types_the_voucher_on_the_payment(
    clinic_a, maria, account, voucher_reward, receptionist_a, client_for
):
    give(account, 100, "seed")
    desk = client_for(receptionist_a)
    url = reverse("admin:loyalty_loyaltyaccount_redeem", args=[account.pk])
    assert desk.post(url, {"reward": voucher_reward.pk}).status_code == 302
    code = Redemption.objects.get().code

    answer = desk.post(
        reverse("admin:billing_payment_register") + f"?patient={maria.pk}",
        {"amount": "150,00", "method": "cash", "discount_code": code, "description": ""},
    )

    assert answer.status_code == 302, answer.content.decode()[:2000]
    payment = Payment.objects.get()
    assert payment.amount == Decimal("130.00")
    assert Redemption.objects.get().status == "used"


def test_a_used_voucher_at_the_desk_is_a_form_error(
    clinic_a, maria, account, voucher_reward, receptionist_a, client_for
):
    give(account, 100, "seed")
    redemption = services.reward_redeem(account=account, reward=voucher_reward)
    Redemption.objects.filter(pk=redemption.pk).update(status="used")
    desk = client_for(receptionist_a)

    answer = desk.post(
        reverse("admin:billing_payment_register") + f"?patient={maria.pk}",
        {"amount": "150,00", "method": "cash", "discount_code": redemption.code},
    )

    assert answer.status_code == 200
    assert not Payment.objects.exists()


def test_only_a_manager_adjusts_points(account, receptionist_a, manager_a, client_for):
    url = reverse("admin:loyalty_loyaltyaccount_adjust", args=[account.pk])
    assert client_for(receptionist_a).post(url, {"points": 10, "reason": "x"}).status_code == 403

    assert client_for(manager_a).post(url, {"points": 10, "reason": "Cortesia"}).status_code == 302
    account.refresh_from_db()
    assert account.balance == 10


def test_the_accounts_changelist_reads_in_few_queries(
    clinic_a, manager_a, client_for, django_assert_max_num_queries
):
    for _ in range(15):
        give(services.account_for(PatientFactory(clinic=clinic_a)), 10, "k")
    client = client_for(manager_a)
    with django_assert_max_num_queries(20):
        assert client.get(reverse("admin:loyalty_loyaltyaccount_changelist")).status_code == 200


# --- Partner API ----------------------------------------------------------------------------
def test_the_api_shows_balance_and_history_with_its_scope(clinic_a, maria, account):
    give(account, 70, "seed")
    client = key_client(clinic_a, "loyalty:read")

    listed = client.get("/api/v1/loyalty-accounts/", {"patient": maria.pk})
    [row] = listed.json()["results"]
    assert (row["balance"], row["tier"], row["patient_id"]) == (70, "bronze", maria.pk)
    history = client.get(f"/api/v1/loyalty-accounts/{account.pk}/history/")
    [entry] = history.json()["results"]
    assert (entry["kind"], entry["points"]) == ("earn", 70)

    refused = key_client(clinic_a, "payments:read").get("/api/v1/loyalty-accounts/")
    assert refused.status_code == 403


def test_the_payment_page_shows_the_voucher_taken_off(
    clinic_a, maria, account, voucher_reward, receptionist_a, client_for
):
    from billing import services as billing

    give(account, 100, "seed")
    code = services.reward_redeem(account=account, reward=voucher_reward).code
    payment = billing.payment_register(
        clinic=clinic_a, patient=maria, amount="150", method="cash", discount_code=code
    )

    page = client_for(receptionist_a).get(
        reverse("admin:billing_payment_change", args=[payment.pk])
    )
    assert page.status_code == 200
    assert code in page.content.decode()
