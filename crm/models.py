"""Leads: people who showed interest (a form on the clinic's site, a partner system) and
are not patients yet, with where they came from (source and UTM attribution)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from clinic.fields import PhoneField
from clinic.kernel.tenancy import ClinicOwned


class LeadStatus(models.TextChoices):
    # The funnel's other stages (contacted, qualified, converted, lost) come with the CRM.
    NEW = "new", _("New")


class Lead(ClinicOwned):
    """Someone who asked the clinic for contact, with the campaign that brought them.

    Stored for the CRM issue to come (funnel, scoring, conversion into a patient); for now
    leads arrive through the partner API and announce themselves with ``lead.created``.
    """

    name = models.CharField(_("name"), max_length=255)
    phone = PhoneField(_("phone"), blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    message = models.TextField(_("message"), blank=True)
    source = models.CharField(
        _("source"), max_length=50, blank=True, help_text=_("E.g. website, Instagram, Google.")
    )
    utm_source = models.CharField("utm_source", max_length=255, blank=True)
    utm_medium = models.CharField("utm_medium", max_length=255, blank=True)
    utm_campaign = models.CharField("utm_campaign", max_length=255, blank=True)
    utm_term = models.CharField("utm_term", max_length=255, blank=True)
    utm_content = models.CharField("utm_content", max_length=255, blank=True)
    landing_page = models.URLField(_("landing page"), max_length=2000, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["clinic", "-created_at"], name="lead_clinic_recent_idx")]

    def __str__(self) -> str:
        return self.name
