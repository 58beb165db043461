"""The staff security pages of the admin: invitations, sessions, the trail, the policy —
for clinic administrators, limited to their clinic (issue 19)."""

import pytest
from axes.models import AccessAttempt
from django.core import mail

from clinic.accounts import services
from clinic.accounts.models import Invitation, SecurityEvent, StaffSession
from tests.clinic.accounts.test_sign_in import signed_in

pytestmark = pytest.mark.usefixtures("staff_security")


def test_an_administrator_invites_someone_by_e_mail(
    admin_a, clinic_a, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = signed_in(admin_a)
    data = {
        "full_name": "Nova Pessoa",
        "email": "nova@example.com",
        "cpf": "390.533.447-05",
        "role": "receptionist",
    }
    with django_capture_on_commit_callbacks(execute=True):  # sent after commit
        response = client.post("/admin/accounts/invitation/add/", data)
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="nova@example.com")
    assert invitation.clinic == clinic_a and invitation.invited_by == admin_a
    assert "/account/invitation/" in mail.outbox[0].body


def test_a_receptionist_sees_no_staff_security_page(receptionist_a):
    client = signed_in(receptionist_a)
    for url in (
        "/admin/accounts/invitation/",
        "/admin/accounts/staffsession/",
        "/admin/accounts/securityevent/",
        "/admin/axes/accessattempt/",
    ):
        assert client.get(url).status_code == 403, url


def test_the_trail_and_sessions_show_only_the_clinics_members(
    admin_a, receptionist_a, receptionist_b
):
    signed_in(receptionist_b, ip="10.3.3.3")
    signed_in(receptionist_a, ip="10.4.4.4")
    client = signed_in(admin_a)
    sessions = client.get("/admin/accounts/staffsession/").context["cl"].queryset
    assert receptionist_a in {s.user for s in sessions}
    assert receptionist_b not in {s.user for s in sessions}
    events = client.get("/admin/accounts/securityevent/").context["cl"].queryset
    assert not events.filter(user=receptionist_b).exists()
    AccessAttempt.objects.create(
        username=receptionist_b.username, ip_address="10.3.3.3", failures_since_start=5
    )
    AccessAttempt.objects.create(
        username=receptionist_a.username, ip_address="10.4.4.4", failures_since_start=5
    )
    locks = client.get("/admin/axes/accessattempt/").context["cl"].queryset
    assert {lock.username for lock in locks} == {receptionist_a.username}


def test_an_administrator_ends_someones_session(admin_a, receptionist_a):
    desk = signed_in(receptionist_a, ip="10.4.4.4")
    client = signed_in(admin_a)
    session = StaffSession.objects.get(user=receptionist_a, ended_at__isnull=True)
    client.post(
        "/admin/accounts/staffsession/",
        {"action": "end_sessions", "_selected_action": [session.pk]},
    )
    assert desk.get("/admin/")["Location"].startswith("/admin/login/")
    assert SecurityEvent.objects.filter(user=receptionist_a, kind="session_ended", actor=admin_a)


def test_the_security_trail_is_append_only(receptionist_a):
    from django.core.exceptions import ValidationError

    event = services.event_record(kind="sign_in", user=receptionist_a)
    with pytest.raises(ValidationError):
        event.save()
    with pytest.raises(ValidationError):
        event.delete()
