"""Staff sign-in: two steps, the second factor enforced before any admin page, lockout,
no user enumeration, session limits and revocation (issue 19). Enforcement is on here
(``staff_security``)."""

import time

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.accounts import services
from clinic.accounts.models import SecurityEvent, SecurityPolicy, StaffSession
from tests.clinic.factories import UserFactory

PASSWORD = "s3nha-forte-123"
LOGIN = "/admin/login/"
VERIFY = "/admin/login/verify/"
K = SecurityEvent.Kind

pytestmark = pytest.mark.usefixtures("staff_security")


def enrol(user) -> TOTPDevice:
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    return device


def code(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def signed_in(user, ip="10.1.1.1") -> Client:
    """A client signed in through both steps, with a recovery code (a TOTP code is good
    once per 30 s)."""
    client = Client(REMOTE_ADDR=ip)
    recovery = services.recovery_codes_generate(user=user)
    sign_in_password(client, user.username)
    assert client.post(VERIFY, {"code": recovery[0]})["Location"] == "/admin/"
    return client


def sign_in_password(client, username, password=PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})


def test_a_user_without_a_second_factor_is_sent_to_enrolment_before_any_admin_page(
    receptionist_a,
):
    client = Client()
    response = sign_in_password(client, receptionist_a.username)
    assert response.status_code == 302
    page = client.get("/admin/")
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("accounts:mfa_setup"))
    assert client.get("/admin/clinic/patient/").status_code == 302


def test_enrolment_confirms_the_app_and_shows_recovery_codes_then_opens_the_admin(
    receptionist_a,
):
    client = Client()
    sign_in_password(client, receptionist_a.username)
    setup = client.get(reverse("accounts:mfa_setup"))
    assert b"<svg" in setup.content  # the QR code, inline (no CDN)
    device = TOTPDevice.objects.get(user=receptionist_a, confirmed=False)
    wrong = client.post(reverse("accounts:mfa_setup"), {"code": "000000"})
    assert wrong.status_code == 200
    done = client.post(reverse("accounts:mfa_setup"), {"code": code(device)})
    assert done["Location"].startswith(reverse("accounts:recovery_codes"))
    codes = client.get(done["Location"]).context["codes"]
    assert len(codes) == 10
    assert client.get("/admin/").status_code == 200
    assert SecurityEvent.objects.filter(user=receptionist_a, kind=K.MFA_ADDED).exists()


def test_sign_in_with_password_and_code_and_a_recovery_code_works_once(receptionist_a):
    device = enrol(receptionist_a)
    recovery = services.recovery_codes_generate(user=receptionist_a)
    client = Client()
    step1 = sign_in_password(client, receptionist_a.username)
    assert step1["Location"].startswith(VERIFY)
    assert SESSION_KEY not in client.session  # not signed in after the password alone
    assert client.get("/admin/").status_code == 302
    step2 = client.post(VERIFY, {"code": code(device), "next": "/admin/"})
    assert step2["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

    other = Client()
    sign_in_password(other, receptionist_a.username)
    assert other.post(VERIFY, {"code": recovery[0]})["Location"] == "/admin/"
    again = Client()
    sign_in_password(again, receptionist_a.username)
    assert again.post(VERIFY, {"code": recovery[0]}).status_code == 200  # used up


def test_five_wrong_codes_lock_the_account_and_an_admin_unlocks_it(
    receptionist_a, admin_a, settings
):
    settings.CUIDAR_REAUTH_REQUIRED = False
    device = enrol(receptionist_a)
    client = Client()
    sign_in_password(client, receptionist_a.username)
    for _ in range(4):
        assert client.post(VERIFY, {"code": "000000"}).status_code == 200
    locked = client.post(VERIFY, {"code": "000000"})
    assert locked.status_code == 429
    # Even the right password and code are refused now.
    assert sign_in_password(Client(), receptionist_a.username).status_code == 429
    assert SecurityEvent.objects.filter(user=receptionist_a, kind=K.LOCKED_OUT).exists()

    admin = signed_in(admin_a)
    from axes.models import AccessAttempt

    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    admin.post(
        "/admin/axes/accessattempt/",
        {"action": "unlock", "_selected_action": ids},
    )
    assert not AccessAttempt.objects.exists()
    assert SecurityEvent.objects.filter(kind=K.UNLOCKED, actor=admin_a).exists()
    fresh = Client()
    assert sign_in_password(fresh, receptionist_a.username)["Location"].startswith(VERIFY)
    assert fresh.post(VERIFY, {"code": code(device)})["Location"] == "/admin/"


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(receptionist_a):
    def attempt(username):
        started = time.perf_counter()
        response = sign_in_password(
            Client(REMOTE_ADDR=f"10.0.0.{len(username)}"), username, "errada-123"
        )
        return response, time.perf_counter() - started

    known, known_time = attempt(receptionist_a.username)
    unknown, unknown_time = attempt("ninguem-aqui")
    assert known.status_code == unknown.status_code == 200
    assert known.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()
    # Both run the password hasher (Django hashes for unknown users too): same time class.
    assert max(known_time, unknown_time) < 10 * min(known_time, unknown_time) + 0.05


def test_an_unknown_username_is_locked_like_a_real_one(receptionist_a):
    client = Client()
    for _ in range(5):
        last = sign_in_password(client, "ninguem-aqui", "errada-123")
    assert last.status_code == 429
    for _ in range(5):
        real = sign_in_password(Client(REMOTE_ADDR="10.9.9.9"), receptionist_a.username, "errada-1")
    assert real.status_code == 429
    assert last.content.count(b"errornote") == real.content.count(b"errornote")


def test_failed_and_successful_sign_ins_are_in_the_trail_and_shown_after_sign_in(
    receptionist_a,
):
    sign_in_password(Client(), receptionist_a.username, "errada-123")
    sign_in_password(Client(), receptionist_a.username, "errada-456")
    client = Client()
    sign_in_password(client, receptionist_a.username)
    kinds = list(SecurityEvent.objects.filter(user=receptionist_a).values_list("kind", flat=True))
    assert kinds.count(K.SIGN_IN_FAILED) == 2 and K.SIGN_IN in kinds
    assert client.session[services.SESSION_WELCOME]["failures"] == 2


def test_a_session_ends_after_the_clinics_idle_timeout(receptionist_a, clinic_a):
    SecurityPolicy.objects.create(clinic=clinic_a, idle_minutes_sensitive=15)
    device = enrol(receptionist_a)
    with time_machine.travel("2026-12-01 12:00:00 +0000", tick=False) as clock:
        client = Client()
        sign_in_password(client, receptionist_a.username)
        client.post(VERIFY, {"code": code(device)})
        clock.shift(60 * 14)
        assert client.get("/admin/").status_code == 200
        clock.shift(60 * 16)
        expired = client.get("/admin/")
        assert expired.status_code == 302 and expired["Location"].startswith(LOGIN)
        assert SESSION_KEY not in client.session


def test_a_session_ends_after_twelve_hours_however_active(receptionist_a):
    device = enrol(receptionist_a)
    with time_machine.travel("2026-12-01 08:00:00 +0000", tick=False) as clock:
        client = Client()
        sign_in_password(client, receptionist_a.username)
        client.post(VERIFY, {"code": code(device)})
        for _ in range(49):
            clock.shift(60 * 15)
            client.get("/admin/")
        assert client.get("/admin/")["Location"].startswith(LOGIN)


def test_ending_a_session_signs_it_out_at_once(receptionist_a):
    device = enrol(receptionist_a)
    phone = Client()
    sign_in_password(phone, receptionist_a.username)
    phone.post(VERIFY, {"code": code(device)})
    desk = signed_in(receptionist_a)
    phone_session = StaffSession.objects.get(session_key=phone.session.session_key)
    desk.post(reverse("accounts:session_end", args=[phone_session.pk]))
    assert phone.get("/admin/")["Location"].startswith(LOGIN)
    assert desk.get("/admin/").status_code == 200
    desk.post(reverse("accounts:sessions_end_all"))
    assert desk.get("/admin/")["Location"].startswith(LOGIN)


def test_a_role_change_rotates_the_session_key(receptionist_a, clinic_a):
    from clinic.models import Membership

    device = enrol(receptionist_a)
    client = Client()
    sign_in_password(client, receptionist_a.username)
    client.post(VERIFY, {"code": code(device)})
    before = client.session.session_key
    membership = Membership.objects.get(user=receptionist_a, clinic=clinic_a)
    membership.role = "manager"
    from clinic import services as clinic_services

    clinic_services.membership_save(membership=membership)
    assert client.get("/admin/").status_code == 200
    assert client.session.session_key != before


def test_the_policy_relaxes_the_second_factor_only_for_roles_without_sensitive_access(clinic_a):
    from django.core.exceptions import ValidationError

    policy = SecurityPolicy(clinic=clinic_a, mfa_optional_roles=["receptionist"])
    with pytest.raises(ValidationError):
        policy.full_clean()


def test_the_operator_signs_in_with_a_second_factor_too(db):
    operator = UserFactory(username="op", is_staff=True, is_superuser=True)
    client = Client()
    sign_in_password(client, operator.username)
    assert client.get("/admin/")["Location"].startswith(reverse("accounts:mfa_setup"))


def test_nobody_ends_another_persons_session_or_removes_their_device(
    receptionist_a, receptionist_b
):
    """The /account/ pages act on the signed-in user's own sessions and devices only: another
    person's ids (here of another clinic's member) answer 404 and change nothing."""
    their_device = enrol(receptionist_b)
    theirs = signed_in(receptionist_b, ip="10.3.3.3")
    their_session = StaffSession.objects.get(session_key=theirs.session.session_key)
    mine = signed_in(receptionist_a)

    ended = mine.post(reverse("accounts:session_end", args=[their_session.pk]))
    removed = mine.post(reverse("accounts:device_remove", args=["totp", their_device.pk]))

    assert ended.status_code == 404
    # Removing a device asks for the password and code again first; whatever the answer,
    # the other person's device stays.
    assert removed.status_code == 404 or "reauth" in removed["Location"]
    assert theirs.get("/admin/").status_code == 200
    assert TOTPDevice.objects.filter(pk=their_device.pk).exists()
