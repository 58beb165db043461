"""The portal shell's rows: sign-in attempts (``PortalChallenge``) and signed-in devices
(``PortalSession``).

They moved here from ``clinic.models`` (issue 18) without moving their tables: each keeps
its ``clinic_…`` table (``db_table``), so an existing database migrated in place."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import ClinicOwned


class PortalChallenge(models.Model):
    """One sign-in attempt on the portal: the one-time code sent for an identifier (CPF,
    phone or e-mail). It spans clinics on purpose — the same person may be a patient of
    several — so it is not clinic-owned; ``patient_ids`` are the records it may open.

    The code is kept only as an HMAC (keyed with the ``SECRET_KEY``). An identifier that
    matches nobody still gets a challenge, with no code that can match, so the pages never
    reveal whether a CPF is known."""

    id = models.UUIDField(primary_key=True, editable=False)
    identifier_hash = models.CharField(max_length=64, db_index=True)
    patient_ids = models.JSONField(default=list)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "clinic_portalchallenge"
        verbose_name = _("portal sign-in code")
        verbose_name_plural = _("portal sign-in codes")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.id)


class PortalSession(ClinicOwned):
    """A patient signed in to the portal: one per device. Separate from staff sessions
    (its own cookie and table); ends after inactivity, on "sign out", or when the patient
    signs out of every device. Only the hash of the cookie's token is kept."""

    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.CASCADE,
        related_name="portal_sessions",
        verbose_name=_("patient"),
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("signed in at"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("device"), max_length=255, blank=True)

    class Meta:
        db_table = "clinic_portalsession"
        verbose_name = _("portal session")
        verbose_name_plural = _("portal sessions")
        ordering = ["-last_seen_at"]
        indexes = [
            models.Index(
                fields=["patient"],
                condition=Q(ended_at__isnull=True),
                name="portal_session_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} · {self.created_at:%Y-%m-%d %H:%M}"
