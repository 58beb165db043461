"""Tenancy (Clinic, Membership) and the clinic's people: patients, professionals, rooms,
and the patients' consents (LGPD)."""

import secrets
import unicodedata
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from . import validators
from .choices import (
    BloodType,
    BrazilTimeZone,
    ConsentLegalBasis,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
    ContactChannel,
    Council,
    MembershipRole,
    Sex,
    State,
)
from .fields import CNPJField, CPFField, PhoneField
from .kernel.tenancy import ClinicOwned, ClinicQuerySet


def search_normalize(text: str) -> str:
    """Lower-case, accents removed: how names are matched ("jose" finds "José")."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def new_checkin_token() -> str:
    return secrets.token_urlsafe(24)


#: The fields of an address (``Address``), in form order.
ADDRESS_FIELDS = ("postal_code", "street", "number", "complement", "district", "city", "state")


class Address(models.Model):
    """Brazilian postal address, shared by clinics and patients."""

    postal_code = models.CharField(_("CEP"), max_length=9, blank=True)
    street = models.CharField(_("street"), max_length=255, blank=True)
    number = models.CharField(_("number"), max_length=20, blank=True)
    complement = models.CharField(_("complement"), max_length=100, blank=True)
    district = models.CharField(_("district"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state"), max_length=2, choices=State.choices, blank=True)

    class Meta:
        abstract = True

    @property
    def address_line(self) -> str:
        street = ", ".join(p for p in (self.street, self.number, self.complement) if p)
        place = " - ".join(p for p in (self.district, self.city, self.state) if p)
        return " — ".join(p for p in (street, place, self.postal_code) if p)


class Clinic(Address):
    """A tenant: one clinic (or one unit of a clinic network) with its own data.

    ``settings`` holds per-clinic options of later features (slot step, reminders …),
    read through the app that owns each option.
    """

    name = models.CharField(_("name"), max_length=150)
    legal_name = models.CharField(_("legal name"), max_length=255, blank=True)
    cnpj = CNPJField(_("CNPJ"), unique=True)
    time_zone = models.CharField(
        _("time zone"),
        max_length=40,
        choices=BrazilTimeZone.choices,
        default=BrazilTimeZone.SAO_PAULO,
    )
    phone = PhoneField(_("phone"), blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    logo = models.FileField(
        _("logo"),
        upload_to="clinic-logos/",
        blank=True,
        validators=[validators.validate_logo],
        help_text=_("PNG, JPEG or WebP, up to 200 KB. Shown on the patient portal."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def cnpj_formatted(self) -> str:
        return validators.cnpj_format(self.cnpj)

    @property
    def phone_formatted(self) -> str:
        return validators.phone_format(self.phone) if self.phone else ""


class Membership(models.Model):
    """A staff user's role in one clinic. Roles map to Django groups (see ``roles.py``)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("clinic")
    )
    role = models.CharField(_("role"), max_length=20, choices=MembershipRole.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ClinicQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="membership_unique_user_clinic")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.clinic} ({self.get_role_display()})"


class Patient(ClinicOwned, Address):
    """A person cared for by one clinic. The same person at two clinics is two patients:
    each clinic owns its records (CPF is unique per clinic)."""

    full_name = models.CharField(_("full name"), max_length=255)
    social_name = models.CharField(
        _("social name"),
        max_length=255,
        blank=True,
        help_text=_("The name the patient wants to be called by (Decreto 8.727/2016)."),
    )
    cpf = CPFField(_("CPF"), blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=20, choices=Sex.choices, blank=True)
    gender_identity = models.CharField(_("gender identity"), max_length=50, blank=True)
    # CFM 1.638/2002 art. 5 (a): the record identifies the patient by mother's name and
    # place of birth (município/UF) besides name, birth date, sex and address with CEP.
    mother_name = models.CharField(_("mother's name"), max_length=255, blank=True)
    birthplace_city = models.CharField(_("place of birth (city)"), max_length=100, blank=True)
    birthplace_state = models.CharField(
        _("place of birth (state)"), max_length=2, choices=State.choices, blank=True
    )
    phone = PhoneField(_("mobile phone"))
    email = models.EmailField(_("e-mail"), blank=True)
    preferred_channel = models.CharField(
        _("preferred contact channel"),
        max_length=20,
        choices=ContactChannel.choices,
        default=ContactChannel.WHATSAPP,
    )
    blood_type = models.CharField(
        _("blood type"), max_length=3, choices=BloodType.choices, blank=True
    )
    allergies = models.TextField(_("allergies"), blank=True)
    chronic_conditions = models.TextField(_("chronic conditions"), blank=True)
    medications = models.TextField(_("medications in use"), blank=True)
    lead_source = models.CharField(
        _("how they found us"),
        max_length=50,
        blank=True,
        help_text=_("E.g. Instagram, Google, referral by a patient."),
    )
    notes = models.TextField(_("reception notes"), blank=True)
    no_show_count = models.PositiveIntegerField(_("no-shows"), default=0, editable=False)
    checkin_token = models.CharField(
        _("check-in token"),
        max_length=64,
        unique=True,
        default=new_checkin_token,
        editable=False,
        help_text=_("Shown as the patient's check-in QR code; rotate it if it leaks."),
    )
    # Maintained by save(): the name without accents, for searching as people type.
    search_name = models.CharField(max_length=520, editable=False, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["full_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "cpf"],
                condition=~Q(cpf=""),
                name="patient_unique_cpf_per_clinic",
                violation_error_message=_("A patient with this CPF already exists in this clinic."),
            )
        ]
        indexes = [
            models.Index(fields=["clinic", "search_name"], name="patient_clinic_name_idx"),
            models.Index(fields=["clinic", "cpf"], name="patient_clinic_cpf_idx"),
            models.Index(fields=["clinic", "phone"], name="patient_clinic_phone_idx"),
        ]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args, **kwargs):
        self.search_name = search_normalize(f"{self.full_name} {self.social_name}")
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"full_name", "social_name"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "search_name"}
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        """The social name when the patient has one: it is how they must be addressed."""
        return self.social_name or self.full_name

    @property
    def first_name(self) -> str:
        return self.display_name.split(" ", 1)[0]

    @property
    def cpf_formatted(self) -> str:
        return validators.cpf_format(self.cpf) if self.cpf else ""

    @property
    def phone_formatted(self) -> str:
        return validators.phone_format(self.phone) if self.phone else ""

    def age(self, on: date | None = None) -> int | None:
        if not self.birth_date:
            return None
        on = on or timezone.localdate()
        before_birthday = (on.month, on.day) < (self.birth_date.month, self.birth_date.day)
        return on.year - self.birth_date.year - before_birthday


class Professional(ClinicOwned):
    """A health professional who attends at the clinic (and may sign in, if linked to a
    user)."""

    full_name = models.CharField(_("full name"), max_length=255)
    council = models.CharField(
        _("professional council"), max_length=10, choices=Council.choices, blank=True
    )
    registration = models.CharField(_("registration number"), max_length=20, blank=True)
    council_state = models.CharField(
        _("council state (UF)"), max_length=2, choices=State.choices, blank=True
    )
    specialty = models.CharField(_("specialty"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = PhoneField(_("phone"), blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="professional_profiles",
        verbose_name=_("user account"),
        help_text=_("Links the professional to a staff sign-in of this clinic."),
    )
    color = models.CharField(
        _("agenda colour"),
        max_length=7,
        default="#2E86DE",
        validators=[validators.color_validate],
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("professional")
        verbose_name_plural = _("professionals")
        ordering = ["full_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "council", "council_state", "registration"],
                condition=~Q(registration=""),
                name="professional_unique_registration_per_clinic",
                violation_error_message=_(
                    "A professional with this council registration already exists in this clinic."
                ),
            ),
            models.UniqueConstraint(
                fields=["clinic", "user"],
                condition=Q(user__isnull=False),
                name="professional_unique_user_per_clinic",
                violation_error_message=_(
                    "This user is already linked to another professional of this clinic."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def registration_display(self) -> str:
        """E.g. ``CRM 123456/SP``."""
        if not self.registration:
            return ""
        council = self.council if self.council != Council.OTHER else ""
        state = f"/{self.council_state}" if self.council_state else ""
        return f"{council} {self.registration}{state}".strip()

    def clean(self):
        super().clean()
        if self.registration and not self.council:
            raise ValidationError(
                {"council": _("Choose the council that issued this registration.")}
            )


class Room(ClinicOwned):
    """A room (or any bookable space) of the clinic."""

    name = models.CharField(_("name"), max_length=100)
    resources = models.TextField(
        _("resources"), blank=True, help_text=_("Equipment available in the room, one per line.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "name"],
                name="room_unique_name_per_clinic",
                violation_error_message=_("A room with this name already exists in this clinic."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def resource_list(self) -> list[str]:
        return [line.strip() for line in self.resources.splitlines() if line.strip()]


class Consent(ClinicOwned):
    """One recorded decision of a patient about a channel and a purpose (LGPD).

    Append-only: a revocation is a new row, never an edit, so the history of what the
    patient said, when and through what, is kept as evidence. The latest row for a
    (patient, channel, purpose) is the one in force. On PostgreSQL the database itself
    refuses UPDATE and DELETE on this table.
    """

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="consents", verbose_name=_("patient")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=ContactChannel.choices)
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    status = models.CharField(_("decision"), max_length=10, choices=ConsentStatus.choices)
    legal_basis = models.CharField(
        _("legal basis"),
        max_length=30,
        choices=ConsentLegalBasis.choices,
        default=ConsentLegalBasis.CONSENT,
    )
    source = models.CharField(
        _("source"), max_length=20, choices=ConsentSource.choices, default=ConsentSource.RECEPTION
    )
    text_version = models.CharField(
        _("text version"),
        max_length=30,
        blank=True,
        help_text=_("Version of the consent text the patient agreed to, e.g. 2026-01."),
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-recorded_at", "-pk"]
        indexes = [
            models.Index(
                fields=["patient", "channel", "purpose", "-recorded_at"],
                name="consent_current_idx",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_status_display()}: {self.get_purpose_display()} / "
            f"{self.get_channel_display()}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValidationError(_("Consents are append-only: record a new decision instead."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Consents are append-only and cannot be deleted."))

    def clean(self):
        super().clean()
        if self.patient_id and self.clinic_id and self.patient.clinic_id != self.clinic_id:
            raise ValidationError({"patient": _("This patient belongs to another clinic.")})


class PrivacyRequest(ClinicOwned):
    """A data subject's request under the LGPD (art. 18), made on the portal and handled
    by the clinic: a data export (recorded when it is downloaded) or deletion (clinical
    records stay 20 years by law, Lei 13.787/2018; contact and marketing data are
    anonymised)."""

    class Kind(models.TextChoices):
        EXPORT = "export", _("Data export")
        DELETION = "deletion", _("Deletion")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("privacy request status", "Open")
        DONE = "done", pgettext_lazy("privacy request status", "Done")
        REFUSED = "refused", pgettext_lazy("privacy request status", "Refused")

    patient = models.ForeignKey(
        Patient,
        on_delete=models.PROTECT,
        related_name="privacy_requests",
        verbose_name=_("patient"),
    )
    kind = models.CharField(_("request"), max_length=20, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN
    )
    details = models.TextField(_("what the patient wrote"), blank=True)
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("handled by"),
    )
    resolution = models.TextField(_("resolution"), blank=True)
    # Why data the patient asked to delete was kept (e.g. the clinical record: Lei
    # 13.787/2018 art. 6, CFM 1.821/2007 art. 7), filled by patient_anonymise from the
    # retention holds apps register (clinic.privacy.retention_hold).
    retention_basis = models.TextField(_("legal basis for keeping data"), blank=True)

    class Meta:
        verbose_name = _("privacy request")
        verbose_name_plural = _("privacy requests")
        ordering = ["-requested_at"]
        indexes = [
            models.Index(fields=["clinic", "status", "-requested_at"], name="privacy_open_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.patient}"


# --- Audit trail ----------------------------------------------------------------------------
class AuditEntry(ClinicOwned):
    """Who did what, when, from where, to which patient's data — reads of clinical data
    included. Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE. The actor and
    the patient are kept as ids and labels, not foreign keys, so deleting a user or a key
    never has to touch (or is blocked by) the trail."""

    class Actor(models.TextChoices):
        STAFF = "staff", _("Staff member")
        PATIENT = "patient", _("Patient (portal)")
        API_KEY = "api_key", _("Partner API key")
        SYSTEM = "system", _("System")

    class Action(models.TextChoices):
        VIEW = "view", _("Viewed the record")
        EXPORT = "export", _("Downloaded the data")
        SIGN_IN = "sign_in", _("Signed in to the portal")
        ANONYMISE = "anonymise", _("Anonymised")
        BACKUP = "backup", _("Backed up (with every clinic's data)")
        RESTORE = "restore", _("Restored from a backup")
        RESTORE_DRILL = "restore_drill", _("Restored in a drill (a scratch copy, then deleted)")
        ENCAIXE = "encaixe", _("Booked over an occupied time (encaixe)")

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor_kind = models.CharField(_("who"), max_length=20, choices=Actor.choices)
    actor_id = models.BigIntegerField(_("actor id"), null=True, blank=True)
    actor_label = models.CharField(_("actor"), max_length=255, blank=True)
    action = models.CharField(_("action"), max_length=40, choices=Action.choices)
    object_type = models.CharField(_("object"), max_length=60, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    patient_id = models.BigIntegerField(_("patient id"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("device"), max_length=255, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "-at"], name="audit_clinic_at_idx"),
            models.Index(fields=["clinic", "patient_id", "-at"], name="audit_patient_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError(_("The audit trail is append-only."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("The audit trail is append-only."))
