"""Clinic B's rows through the patient portal: a patient of clinic A, signed in, walks every
portal page (the URL patterns of the ``portal`` namespace): pages with an object in their
path answer 404 for B's rows (and for another patient's of A); the other pages never show
B's rows, whatever ids they are given."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic.portal import sessions
from tests.clinic.factories import PatientFactory
from tests.scheduling.factories import AppointmentFactory

from .conftest import footprint, snapshot
from .walk import all_url_patterns

NAMESPACE = "portal:"


def portal_pages() -> dict[str, tuple[str, ...]]:
    """``{url name: its arguments}`` of every portal page."""
    return {
        name: tuple(sorted(pattern.pattern.regex.groupindex))
        for _route, name, pattern in all_url_patterns()
        if name.startswith(NAMESPACE)
    }


#: Pages with an object in their path, and the model of that object (by class name).
OBJECT_PAGES = {
    "portal:appointment": "Appointment",
    "portal:appointment_confirm": "Appointment",
    "portal:appointment_cancel": "Appointment",
    "portal:appointment_reschedule": "Appointment",
    "portal:appointment_ics": "Appointment",
    "portal:payment": "Payment",
    "portal:payment_receipt": "Payment",
}
#: Pages of a paid payment only: the rows on both sides are paid, so that the 404 comes from
#: whose payment it is.
PAID_ONLY = {"portal:payment_receipt"}

#: Pages without an object in their path, and clinic B's ids each is given (query and form).
PAGES = {
    "portal:home": lambda b: {},
    "portal:profile": lambda b: {},
    "portal:consents": lambda b: {},
    "portal:privacy": lambda b: {},
    "portal:privacy_export_json": lambda b: {},
    "portal:privacy_export_html": lambda b: {},
    "portal:appointments": lambda b: {},
    "portal:payments": lambda b: {},
    # POST: redeem B's reward (refused as "no longer offered", nothing written)
    "portal:points": lambda b: {"reward": b.reward.pk},
    "portal:my_record": lambda b: {},
    "portal:book": lambda b: {
        "service": b.service.pk,
        "professional": b.professional.pk,
        "day": timezone.localtime(b.appointment.start).date().isoformat(),
        "start": b.appointment.start.isoformat(),
    },
}

#: Portal pages that show no clinic's rows, and why.
NO_CLINIC_DATA = {
    "portal:sign_in": "asks for a phone or CPF",
    "portal:sign_in_code": "asks for the code sent",
    "portal:choose_clinic": (
        "lists the patient records verified by the sign-in code (the same person in "
        "several clinics): tests/portal/test_signin.py"
    ),
    "portal:sign_out": "ends the patient's own session",
    "portal:sign_out_everywhere": "ends the patient's own sessions",
    "portal:logo": "the signed-in patient's own clinic's logo",
}


@pytest.fixture
def signed_in_a(world_a):
    """Patient A (of clinic A's world), signed in to the portal (a real session and its
    cookie, as the sign-in steps leave them)."""
    client = Client()
    token, _session = sessions.session_start(patient=world_a.patient)
    client.cookies[sessions.COOKIE_NAME] = token
    client.cookies[sessions.COOKIE_NAME]["path"] = sessions.COOKIE_PATH
    return client


@pytest.fixture(params=["other clinic", "other patient of the clinic"])
def theirs(request, clinic_a, world_a, world_b):
    """Rows the signed-in patient must not reach: clinic B's, and another patient's of A."""
    if request.param == "other clinic":
        return world_b.appointment, world_b.payment
    other = PatientFactory(clinic=clinic_a, full_name="Outro Paciente da Alfa")
    appointment = AppointmentFactory(
        clinic=clinic_a,
        service=world_a.service,
        professional=world_a.professional,
        patient=other,
        start=world_a.appointment.start + timedelta(hours=2),
    )
    payment = type(world_a.payment).objects.create(
        clinic=clinic_a,
        patient=other,
        amount=world_a.payment.amount,
        method=world_a.payment.method,
        gateway=world_a.payment.gateway,
        status=world_a.payment.status,
        description="Cobrança de outro paciente",
        due_date=timezone.localdate(),
    )
    return appointment, payment


@pytest.mark.parametrize("name", sorted(OBJECT_PAGES))
def test_object_pages_answer_404_for_rows_not_the_patients(name, world_a, theirs, signed_in_a):
    appointment, payment = theirs
    row = appointment if OBJECT_PAGES[name] == "Appointment" else payment
    own = world_a.appointment if OBJECT_PAGES[name] == "Appointment" else world_a.payment
    if name in PAID_ONLY:
        for payment_row in (own, row):
            type(payment_row).objects.filter(pk=payment_row.pk).update(
                status="paid", paid_at=timezone.now()
            )
    before_row, before = snapshot(row), footprint(row.clinic)

    reachable = signed_in_a.get(reverse(name, kwargs={"pk": own.pk}))
    shown = signed_in_a.get(reverse(name, kwargs={"pk": row.pk}))
    posted = signed_in_a.post(reverse(name, kwargs={"pk": row.pk}), {"reason": "x"})

    # The patient's own row: the page works (or wants the other method).
    assert reachable.status_code in (200, 302, 405), reachable.status_code
    # Theirs: not found, by whichever method the page takes (405 for the other one).
    assert shown.status_code in (404, 405), shown.status_code
    assert posted.status_code in (404, 405), posted.status_code
    assert 404 in (shown.status_code, posted.status_code)
    assert snapshot(row) == before_row
    assert footprint(row.clinic) == before


@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_never_show_other_clinics_rows(name, clinic_b, world_a, world_b, signed_in_a):
    url = reverse(name)
    before = footprint(clinic_b)

    shown = signed_in_a.get(url, PAGES[name](world_b))
    posted = signed_in_a.post(url, PAGES[name](world_b))

    assert shown.status_code in (200, 302, 400), shown.status_code  # 400: B's ids refused
    assert posted.status_code in (200, 302, 400, 403, 405), posted.status_code
    for response in (shown, posted):
        content = b"".join(response.streaming_content) if response.streaming else response.content
        assert not world_b.shown_in(content), f"{url} shows {world_b.shown_in(content)}"
        assert clinic_b.name not in content.decode()
    assert footprint(clinic_b) == before
