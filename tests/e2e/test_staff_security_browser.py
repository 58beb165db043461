"""Staff security in a real browser (issue 19), with enforcement on:

- a new receptionist accepts her invitation, enrols an authenticator app (the code computed
  here from the secret the page shows), signs out, signs in with password + code; five wrong
  codes lock her out; an administrator unlocks; she signs in again;
- a passkey is enrolled and then used to sign in, with Chromium's virtual authenticator
  (WebAuthn through Playwright's CDP session).
"""

import re
from base64 import b32decode
from pathlib import Path

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp_webauthn.models import WebAuthnCredential

from clinic.accounts import services
from clinic.accounts.models import SecurityEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("staff_security")]

PASSWORD = "uma-senha-boa-77"
#: The dashboard itself (a glob "**/admin/" would also match ".../verify/?next=/admin/").
DASHBOARD = re.compile(r"^http://[^/]+/admin/$")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def app_code(secret: str, ahead: int = 0) -> str:
    """What the authenticator app shows for this key (``ahead`` steps of 30 s later: the
    server accepts the next step too, and never the same step twice)."""
    key = b32decode(secret.replace(" ", ""))
    return f"{totp(key, drift=ahead):06d}"


def desk_context(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1366, "height": 768},
        locale="pt-BR",
        timezone_id="America/Sao_Paulo",
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def sign_in_password(page, username, password=PASSWORD):
    page.goto("/admin/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")


def test_a_new_receptionist_is_invited_enrols_signs_in_and_is_locked_and_unlocked(
    browser, live_server, clinic_a, admin_a, axe_check
):
    _invitation, token = services.invitation_create(
        clinic=clinic_a,
        email="nova@example.com",
        full_name="Nova Recepção",
        cpf="39053344705",
        role="receptionist",
        by=admin_a,
    )
    context, page = desk_context(browser, live_server)

    # The invitation: username and password, then straight to enrolment.
    page.goto(f"/account/invitation/{token}/")
    page.fill("input[name=username]", "nova")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click(".accounts-form button[type=submit]")
    page.wait_for_url("**/account/mfa/setup/**")
    assert page.locator("svg.accounts-qr").count() == 1  # the QR code, drawn here
    axe_check(page, "enrolment")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "mfa-setup.png"))
    secret = page.inner_text("#totp-secret")

    # Before enrolling, no admin page opens.
    page.goto("/admin/")
    page.wait_for_url("**/account/mfa/setup/**")
    secret = page.inner_text("#totp-secret")  # the same device, the same key
    page.fill("input[name=code]", app_code(secret))
    page.click(".accounts-form button[type=submit]")
    page.wait_for_url("**/account/mfa/recovery-codes/**")
    assert page.locator("#recovery-codes li").count() == 10
    page.click("a.button.default")
    page.wait_for_url(DASHBOARD)
    assert page.locator("#user-tools").count() == 1

    # Sign out, and in again with password + code.
    page.click("#logout-form button")
    page.wait_for_url("**/admin/login/**")
    sign_in_password(page, "nova")
    page.wait_for_url("**/admin/login/verify/**")
    axe_check(page, "second step")
    page.fill("input[name=code]", app_code(secret, ahead=1))
    page.click(".accounts-form button[type=submit]")
    page.wait_for_url(DASHBOARD)
    page.click("#logout-form button")

    # Five wrong codes lock the account.
    sign_in_password(page, "nova")
    page.wait_for_url("**/admin/login/verify/**")
    for _ in range(5):
        page.fill("input[name=code]", "000000")
        with page.expect_navigation():  # each answer is read before the next try
            page.click(".accounts-form button[type=submit]")
    assert "bloqueada" in page.content()
    assert SecurityEvent.objects.filter(username="nova", kind="locked_out").exists()
    sign_in_password(page, "nova")
    assert "bloqueada" in page.content()  # even the right password is refused

    # An administrator (on another computer) unlocks it.
    from axes.models import AccessAttempt

    admin = Client(REMOTE_ADDR="10.8.8.8")
    code = services.recovery_codes_generate(user=admin_a)[0]
    admin.post("/admin/login/", {"username": admin_a.username, "password": "s3nha-forte-123"})
    assert admin.post("/admin/login/verify/", {"code": code})["Location"] == "/admin/"
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    admin.post("/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": ids})
    assert not AccessAttempt.objects.exists()

    sign_in_password(page, "nova")
    page.wait_for_url("**/admin/login/verify/**")
    recovery = services.recovery_codes_generate(user=admin_a.__class__.objects.get(username="nova"))
    page.fill("input[name=code]", recovery[0])
    page.click(".accounts-form button[type=submit]")
    page.wait_for_url(DASHBOARD)
    context.close()


def test_a_passkey_is_enrolled_and_signs_in(browser, live_server, receptionist_a):
    recovery = services.recovery_codes_generate(user=receptionist_a)
    context, page = desk_context(browser, live_server)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    sign_in_password(page, receptionist_a.username, "s3nha-forte-123")
    page.wait_for_url("**/admin/login/verify/**")
    page.fill("input[name=code]", recovery[0])
    page.click(".accounts-form button[type=submit]")
    page.wait_for_url(DASHBOARD)

    page.goto("/account/")
    page.click("#passkey-register-button")
    page.wait_for_selector("#passkey-register-status-message:not(:empty)")
    assert WebAuthnCredential.objects.filter(user=receptionist_a).count() == 1

    page.click("#logout-form button")
    page.wait_for_url("**/admin/login/**")
    sign_in_password(page, receptionist_a.username, "s3nha-forte-123")
    page.wait_for_url("**/admin/login/verify/**")
    page.click("#passkey-verification-button")
    page.wait_for_url(DASHBOARD)
    kinds = list(SecurityEvent.objects.filter(user=receptionist_a).values_list("kind", "details"))
    assert [k for k, _d in kinds].count("sign_in") == 2, kinds
    context.close()
