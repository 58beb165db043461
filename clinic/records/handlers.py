"""What the record does when its own events are delivered (``@subscriber``)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.utils.translation import gettext as _

from clinic.choices import MembershipRole
from clinic.models import Clinic, Membership
from integrations.events import subscriber


def clinical_director_emails(clinic: Clinic) -> list[str]:
    """Who answers for the clinic's records: ``clinic.settings["clinical_director_email"]``
    when set, else the clinic's administrators."""
    email = (clinic.settings or {}).get("clinical_director_email")
    if email:
        return [email]
    return sorted(
        {
            m.user.email
            for m in Membership.objects.filter(
                clinic=clinic, role=MembershipRole.ADMIN, is_active=True
            ).select_related("user")
            if m.user.email
        }
    )


@subscriber("record.emergency_access")
def tell_clinical_director(event, delivery):
    """An emergency access: the clinical director gets an e-mail with ids and a link to
    the audit trail, never the reason's text or the patient's name (the mail leaves the
    system). A second delivery of the same event sends nothing new to the inbox that
    matters: the e-mail names the event id, so a repeat is recognisable."""
    clinic = Clinic.objects.get(pk=event.clinic_id)
    recipients = clinical_director_emails(clinic)
    if not recipients:
        return
    payload = event.payload
    send_mail(
        _("Cuidar: emergency access to a clinical record"),
        _(
            "A professional of %(clinic)s opened the record of patient #%(patient)s outside "
            "their care (emergency access #%(access)s). The reason they wrote is in the "
            "admin, under Clinical record › Emergency accesses. Event %(event)s."
        )
        % {
            "clinic": clinic.name,
            "patient": payload["patient_id"],
            "access": payload["break_glass_id"],
            "event": event.pk,
        },
        settings.DEFAULT_FROM_EMAIL,
        recipients,
    )
