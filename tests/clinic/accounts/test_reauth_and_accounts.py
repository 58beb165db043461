"""Re-authentication for each critical act, one person one account, deactivation,
passwords and invitations (issue 19)."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from clinic.accounts import services
from clinic.accounts.exceptions import AccountError
from clinic.accounts.models import SecurityEvent, StaffProfile, StaffSession
from clinic.models import Membership
from tests.clinic.accounts.test_sign_in import signed_in

User = get_user_model()
PASSWORD = "s3nha-forte-123"

pytestmark = pytest.mark.usefixtures("staff_security")


def reauth(client, user):
    code = services.recovery_codes_generate(user=user)[0]
    response = client.post(
        reverse("accounts:reauth"), {"password": PASSWORD, "code": code, "next": "/admin/"}
    )
    assert response.status_code == 302, response.content


@pytest.mark.parametrize(
    "url",
    [
        "/admin/partner_api/apikey/add/",  # API keys
        "/admin/clinic/membership/{membership}/change/",  # roles
        "/admin/integrations/provideraccount/add/",  # provider credentials
        "/admin/auth/user/{user}/change/",  # staff accounts
        "/admin/billing/financialtransaction/reports/receivables/csv/",  # lists patients
    ],
)
def test_each_critical_page_asks_for_re_authentication_first(
    url, admin_a, receptionist_a, clinic_a
):
    membership = Membership.objects.get(user=receptionist_a, clinic=clinic_a)
    client = signed_in(admin_a)
    target = url.format(membership=membership.pk, user=receptionist_a.pk)
    first = client.get(target)
    assert first.status_code == 302
    assert first["Location"].startswith(reverse("accounts:reauth"))
    reauth(client, admin_a)
    assert not client.get(target).get("Location", "").startswith(reverse("accounts:reauth"))


def test_handling_a_privacy_request_asks_for_re_authentication(admin_a, patient_a):
    from clinic.models import PrivacyRequest

    request = PrivacyRequest.objects.create(
        clinic=patient_a.clinic, patient=patient_a, kind=PrivacyRequest.Kind.DELETION
    )
    client = signed_in(admin_a)
    assert client.get(f"/admin/clinic/privacyrequest/{request.pk}/change/").status_code == 200
    url = reverse("admin:clinic_privacyrequest_anonymise", args=[request.pk])
    refused = client.post(url, {"confirm": "yes"})
    assert refused["Location"].startswith(reverse("accounts:reauth"))
    patient_a.refresh_from_db()
    assert patient_a.phone  # nothing anonymised
    reauth(client, admin_a)
    client.post(url, {"confirm": "yes"})
    request.refresh_from_db()
    assert request.status == PrivacyRequest.Status.DONE


def test_a_wrong_password_on_re_authentication_counts_as_a_failure(admin_a):
    client = signed_in(admin_a)
    response = client.post(reverse("accounts:reauth"), {"password": "errada", "code": "x"})
    assert response.status_code == 200
    assert SecurityEvent.objects.filter(user=admin_a, kind="sign_in_failed").exists()


def test_deactivating_a_user_ends_their_sessions_and_revokes_their_keys(
    admin_a, manager_a, clinic_a
):
    from clinic.partner_api.keys import api_key_create

    key, _secret = api_key_create(
        clinic=clinic_a, name="CRM", scopes=["patients:read"], by=manager_a
    )
    manager = signed_in(manager_a, ip="10.2.2.2")
    services.user_deactivate(user=manager_a, by=admin_a)
    assert manager.get("/admin/")["Location"].startswith("/admin/login/")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not StaffSession.objects.filter(user=manager_a, ended_at__isnull=True).exists()


def test_the_last_active_administrator_cannot_be_deactivated_or_demoted(admin_a, manager_a):
    with pytest.raises(AccountError):
        services.user_deactivate(user=admin_a, by=manager_a)
    membership = Membership.objects.get(user=admin_a)
    membership.role = "manager"
    with pytest.raises(AccountError):
        services.ensure_admin_remains(membership=membership)


def test_nobody_resets_their_own_second_factors(admin_a):
    with pytest.raises(AccountError):
        services.mfa_reset(user=admin_a, by=admin_a)


def test_an_administrator_resets_another_users_factors_and_it_is_audited(admin_a, receptionist_a):
    services.recovery_codes_generate(user=receptionist_a)
    services.mfa_reset(user=receptionist_a, by=admin_a)
    assert not services.user_has_second_factor(receptionist_a)
    assert SecurityEvent.objects.filter(
        user=receptionist_a, kind="mfa_reset", actor=admin_a
    ).exists()


def test_a_user_with_recorded_acts_cannot_be_deleted(receptionist_a, patient_a):
    from clinic.audit import audit_record
    from clinic.models import AuditEntry

    audit_record(
        clinic=patient_a.clinic,
        action="view",
        actor_kind=AuditEntry.Actor.STAFF,
        actor_id=receptionist_a.pk,
        patient=patient_a,
    )
    with pytest.raises(AccountError):
        receptionist_a.delete()


def test_cpf_is_unique_across_staff_accounts(receptionist_a, manager_a):
    from django.core.exceptions import ValidationError

    StaffProfile.objects.create(user=receptionist_a, cpf="52998224725")
    with pytest.raises(ValidationError):
        StaffProfile(user=manager_a, cpf="529.982.247-25").full_clean()


def test_passwords_need_ten_characters_and_differ_from_the_last_ones(receptionist_a):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate_password("curta-123", receptionist_a)
    receptionist_a.set_password("uma-senha-nova-1")
    receptionist_a.save()
    receptionist_a.set_password("outra-senha-2")
    receptionist_a.save()
    with pytest.raises(ValidationError):
        validate_password("uma-senha-nova-1", receptionist_a)


def test_forgot_password_sends_a_single_use_link_and_says_the_same_for_unknown_addresses(
    receptionist_a, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = Client()
    known = client.post(reverse("accounts:password_reset"), {"email": receptionist_a.email})
    unknown = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert known["Location"] == unknown["Location"]
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/account/password/reset/\S+)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.context["validlink"]
    url = form.redirect_chain[-1][0]
    done = client.post(
        url, {"new_password1": "nova-senha-longa-9", "new_password2": "nova-senha-longa-9"}
    )
    assert done.status_code == 302
    again = Client().get(link, follow=True)
    assert not again.context["validlink"]


def test_an_invitation_creates_the_account_once_and_leads_to_enrolment(admin_a, clinic_a, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.db import transaction  # noqa: F401

    with pytest.raises(Exception):  # noqa: B017 - sanity: no CPF twice
        StaffProfile.objects.create(user=admin_a, cpf="52998224725")
        services.invitation_create(
            clinic=clinic_a,
            email="x@example.com",
            full_name="X Y",
            cpf="52998224725",
            role="receptionist",
            by=admin_a,
        )
    _invitation, token = services.invitation_create(
        clinic=clinic_a,
        email="nova@example.com",
        full_name="Nova Recepção",
        cpf="39053344705",
        role="receptionist",
        by=admin_a,
    )
    client = Client()
    url = reverse("accounts:invitation", args=[token])
    data = {"username": "nova", "password1": "uma-senha-boa-77", "password2": "uma-senha-boa-77"}
    response = client.post(url, data)
    assert response["Location"] == reverse("accounts:mfa_setup")
    user = User.objects.get(username="nova")
    assert user.is_staff and user.staff_profile.cpf == "39053344705"
    assert Membership.objects.filter(user=user, clinic=clinic_a, role="receptionist").exists()
    assert client.get("/admin/")["Location"].startswith(reverse("accounts:mfa_setup"))
    assert Client().get(url).status_code == 404  # the link works once


def test_a_password_set_by_an_administrator_must_be_changed_at_next_sign_in(receptionist_a):
    StaffProfile.objects.create(user=receptionist_a, must_change_password=True)
    client = signed_in(receptionist_a)
    assert client.get("/admin/")["Location"].startswith(reverse("accounts:password_change"))
    client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "minha-propria-55",
            "new_password2": "minha-propria-55",
        },
    )
    assert client.get("/admin/").status_code == 200
