"""Partner API: payments, read only (``/api/v1/payments/``)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from billing.choices import InvoiceStatus, PaymentMethod, PaymentStatus
from tests.billing.factories import InvoiceFactory, PaymentFactory
from tests.clinic.factories import PatientFactory
from tests.clinic.partner_api.helpers import key_client
from tests.scheduling.factories import AppointmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/payments/"
PROBLEM = "application/problem+json"


def detail(payment) -> str:
    return f"{LIST}{payment.pk}/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [p["id"] for p in response.json()["results"]]


@pytest.fixture
def accountant_a(clinic_a):
    return key_client(clinic_a, "payments:read")


def paid(clinic, patient, when: datetime, **kwargs):
    return PaymentFactory(
        clinic=clinic, patient=patient, status=PaymentStatus.PAID, paid_at=when, **kwargs
    )


# --- Reading --------------------------------------------------------------------------------
def test_it_shows_a_payment_with_its_amounts_as_decimal_strings(accountant_a, clinic_a):
    appointment = AppointmentFactory(service=ServiceFactory(clinic=clinic_a))
    payment = paid(
        clinic_a,
        appointment.patient,
        datetime(2026, 3, 2, 14, 30, tzinfo=UTC),
        appointment=appointment,
        amount=Decimal("250.00"),
        refunded_amount=Decimal("50.00"),
        method=PaymentMethod.PIX,
        due_date=date(2026, 3, 2),
    )
    body = accountant_a.get(detail(payment)).json()

    assert body["id"] == payment.pk
    assert body["amount"] == "250.00"
    assert body["refunded_amount"] == "50.00"
    assert body["status"] == "paid"
    assert body["method"] == "pix"
    assert body["gateway"] == "manual"
    assert body["due_date"] == "2026-03-02"
    assert body["paid_at"] == "2026-03-02T11:30:00-03:00"
    assert body["appointment_id"] == appointment.pk
    assert body["patient_id"] == appointment.patient_id
    assert body["invoice"] is None


def test_it_shows_the_invoice_of_a_payment(accountant_a, clinic_a, patient_a):
    invoice = InvoiceFactory(
        payment=paid(clinic_a, patient_a, datetime(2026, 3, 2, tzinfo=UTC)),
        status=InvoiceStatus.AUTHORIZED,
        number="2026/123",
        errors=[],
    )
    body = accountant_a.get(detail(invoice.payment)).json()
    assert body["invoice"]["number"] == "2026/123"
    assert body["invoice"]["status"] == "authorized"


def test_it_lists_the_clinics_payments_newest_first(accountant_a, clinic_a, patient_a, clinic_b):
    older = PaymentFactory(clinic=clinic_a, patient=patient_a)
    newer = PaymentFactory(clinic=clinic_a, patient=patient_a)
    PaymentFactory(clinic=clinic_b)
    assert ids(accountant_a.get(LIST)) == [newer.pk, older.pk]


# --- Filters --------------------------------------------------------------------------------
def test_it_filters_by_status_and_patient(accountant_a, clinic_a, patient_a):
    other = PatientFactory(clinic=clinic_a)
    pending = PaymentFactory(clinic=clinic_a, patient=patient_a)
    done = paid(clinic_a, patient_a, datetime(2026, 3, 2, tzinfo=UTC))
    paid(clinic_a, other, datetime(2026, 3, 2, tzinfo=UTC))

    assert ids(accountant_a.get(LIST, {"status": "pending"})) == [pending.pk]
    assert ids(accountant_a.get(LIST, {"status": "paid", "patient": patient_a.pk})) == [done.pk]


def test_paid_from_and_to_take_whole_days_in_the_clinics_time_zone(
    accountant_a, clinic_a, patient_a
):
    # 2026-03-01 23:30 in São Paulo is already 2026-03-02 in UTC.
    late_on_the_1st = paid(clinic_a, patient_a, datetime(2026, 3, 2, 2, 30, tzinfo=UTC))
    on_the_2nd = paid(clinic_a, patient_a, datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    paid(clinic_a, patient_a, datetime(2026, 3, 5, 15, 0, tzinfo=UTC))

    march_1st = {"paid_from": "2026-03-01", "paid_to": "2026-03-01"}
    assert ids(accountant_a.get(LIST, march_1st)) == [late_on_the_1st.pk]
    both = {"paid_from": "2026-03-01", "paid_to": "2026-03-02"}
    assert ids(accountant_a.get(LIST, both)) == [on_the_2nd.pk, late_on_the_1st.pk]


def test_paid_from_and_to_take_date_times_with_offsets(accountant_a, clinic_a, patient_a):
    paid(clinic_a, patient_a, datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    noon = paid(clinic_a, patient_a, datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    window = {"paid_from": "2026-03-02T11:30:00-03:00", "paid_to": "2026-03-02T12:00:00-03:00"}
    assert ids(accountant_a.get(LIST, window)) == [noon.pk]


def test_a_date_time_without_an_offset_is_refused(accountant_a):
    response = accountant_a.get(LIST, {"paid_from": "2026-03-02T09:00:00"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"paid_from"}


def test_invalid_filters_are_field_errors(accountant_a):
    response = accountant_a.get(
        LIST, {"status": "maybe", "patient": "x", "paid_from": "ontem", "paid_to": "2026-13-01"}
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert set(response.json()["errors"]) == {"status", "patient", "paid_from", "paid_to"}


@pytest.mark.parametrize("url", [lambda p: LIST, detail])
def test_a_key_without_the_scope_gets_403(clinic_a, patient_a, url):
    payment = PaymentFactory(clinic=clinic_a, patient=patient_a)
    response = key_client(clinic_a, "patients:read").get(url(payment))
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize("url", [lambda p: LIST, detail])
def test_no_key_gets_401(clinic_a, patient_a, url):
    payment = PaymentFactory(clinic=clinic_a, patient=patient_a)
    response = APIClient().get(url(payment))
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_head_needs_the_same_scope_as_get(accountant_a, clinic_a):
    assert accountant_a.head(LIST).status_code == 200
    assert key_client(clinic_a, "patients:read").head(LIST).status_code == 403


def test_payments_cannot_be_written_through_the_api(accountant_a, clinic_a, patient_a):
    payment = PaymentFactory(clinic=clinic_a, patient=patient_a)
    assert accountant_a.post(LIST, {}, format="json").status_code == 405
    assert accountant_a.delete(detail(payment)).status_code == 405


# --- Query counts ---------------------------------------------------------------------------
def test_listing_payments_costs_the_same_queries_for_3_or_30(
    accountant_a, clinic_a, patient_a, django_assert_max_num_queries
):
    def make(n):
        for _ in range(n):
            InvoiceFactory(payment=paid(clinic_a, patient_a, datetime(2026, 3, 2, tzinfo=UTC)))
            PaymentFactory(clinic=clinic_a, patient=patient_a)

    make(3)
    accountant_a.get(LIST)  # the key's last_used_at is written on its first use
    with CaptureQueriesContext(connection) as six:
        assert len(ids(accountant_a.get(LIST))) == 6
    make(27)
    with django_assert_max_num_queries(len(six)):
        assert len(ids(accountant_a.get(LIST))) == 50  # one page
