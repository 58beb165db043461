"""The clinical record's data. CID-10 (DATASUS, version 2008) is global reference data;
everything else belongs to a clinic."""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.kernel.tenancy import ClinicOwned


class Cid10Chapter(models.Model):
    """A chapter of CID-10 (DATASUS CID-10-CAPITULOS.csv): a range of categories."""

    number = models.PositiveSmallIntegerField(_("number"), primary_key=True)
    first_code = models.CharField(_("first category"), max_length=3)
    last_code = models.CharField(_("last category"), max_length=3)
    description = models.CharField(_("description"), max_length=255)

    class Meta:
        ordering = ["number"]
        verbose_name = _("CID-10 chapter")
        verbose_name_plural = _("CID-10 chapters")

    def __str__(self):
        return self.description


class Cid10Group(models.Model):
    """A group of CID-10 categories (DATASUS CID-10-GRUPOS.csv)."""

    chapter = models.ForeignKey(
        Cid10Chapter, on_delete=models.CASCADE, related_name="groups", verbose_name=_("chapter")
    )
    first_code = models.CharField(_("first category"), max_length=3)
    last_code = models.CharField(_("last category"), max_length=3)
    description = models.CharField(_("description"), max_length=255)

    class Meta:
        ordering = ["first_code"]
        constraints = [
            models.UniqueConstraint(fields=["first_code", "last_code"], name="cid10_group_range")
        ]
        verbose_name = _("CID-10 group")
        verbose_name_plural = _("CID-10 groups")

    def __str__(self):
        return f"{self.first_code}–{self.last_code} {self.description}"


class Cid10Code(models.Model):
    """A CID-10 category (``A00``) or subcategory (``A00.0``), the codes a diagnosis uses.

    ``code`` is written with the dot (as printed on documents); ``compact`` without it (as
    DATASUS ships it and as people type it). ``search_text`` is the code and description
    lower-cased without accents, for search on SQLite; PostgreSQL indexes it with trigrams.
    ``sex_restriction`` is DATASUS' RESTRSEXO: ``M`` or ``F`` when the code only applies to
    that sex."""

    class Level(models.TextChoices):
        CATEGORY = "category", _("category")
        SUBCATEGORY = "subcategory", _("subcategory")

    class SexRestriction(models.TextChoices):
        NONE = "", _("none")
        MALE = "M", _("male only")
        FEMALE = "F", _("female only")

    code = models.CharField(_("code"), max_length=6, unique=True)
    compact = models.CharField(_("code without dot"), max_length=5, unique=True)
    level = models.CharField(_("level"), max_length=12, choices=Level.choices)
    category = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="subcategories",
        verbose_name=_("category"),
    )
    group = models.ForeignKey(
        Cid10Group,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="codes",
        verbose_name=_("group"),
    )
    # DATASUS' longest description has 264 characters.
    description = models.CharField(_("description"), max_length=300)
    short_description = models.CharField(_("short description"), max_length=100, blank=True)
    sex_restriction = models.CharField(
        _("sex restriction"),
        max_length=1,
        choices=SexRestriction.choices,
        blank=True,
        default="",
    )
    search_text = models.CharField(max_length=400, editable=False, db_index=True)

    class Meta:
        ordering = ["compact"]
        verbose_name = _("CID-10 code")
        verbose_name_plural = _("CID-10 codes")

    def __str__(self):
        return f"{self.code} {self.description}"


class ClinicalTemplate(ClinicOwned):
    """An anamnesis or evolution form a clinic defines for a specialty. Its fields live in
    versions: an encounter keeps the version it was written with."""

    class Kind(models.TextChoices):
        ANAMNESIS = "anamnesis", _("anamnesis")
        EVOLUTION = "evolution", _("evolution")

    class Specialty(models.TextChoices):
        GENERAL = "general", _("general practice")
        PHYSIOTHERAPY = "physiotherapy", _("physiotherapy")
        PSYCHOLOGY = "psychology", _("psychology")
        NUTRITION = "nutrition", _("nutrition")
        INTEGRATIVE = "integrative", _("integrative care")
        OTHER = "other", _("other")

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    specialty = models.CharField(_("specialty"), max_length=20, choices=Specialty.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["specialty", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="records_template_name")
        ]
        verbose_name = _("clinical template")
        verbose_name_plural = _("clinical templates")

    def __str__(self):
        return self.name


class ClinicalTemplateVersion(models.Model):
    """One version of a template's fields: a list of field definitions (JSON; the schema is
    in clinic.records' template engine). A version in use by an encounter is never changed;
    editing a template writes a new version."""

    template = models.ForeignKey(
        ClinicalTemplate,
        on_delete=models.PROTECT,
        related_name="versions",
        verbose_name=_("template"),
    )
    number = models.PositiveIntegerField(_("version"))
    fields = models.JSONField(_("fields"), default=list)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="records_template_version")
        ]
        verbose_name = _("clinical template version")
        verbose_name_plural = _("clinical template versions")

    def __str__(self):
        return f"{self.template} v{self.number}"


# --- The record -----------------------------------------------------------------------------
class EncounterStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    FINALIZED = "finalized", _("signed")


class Encounter(ClinicOwned):
    """One atendimento: a professional seeing a patient, with or without an appointment.

    ``appointment`` is a string foreign key to scheduling's Appointment: scheduling sits above
    the record and opens encounters through :func:`clinic.records.services.open_encounter`;
    the record never imports it. ``service_name`` is a snapshot of the appointment's service
    (what administrative staff may see beside the date and the professional).

    Once ``finalized`` (signed) the row is locked: on PostgreSQL a trigger refuses any
    UPDATE or DELETE of it, and no new entry of any kind (vitals included) is accepted."""

    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.PROTECT,
        related_name="encounters",
        verbose_name=_("patient"),
    )
    professional = models.ForeignKey(
        "clinic.Professional",
        on_delete=models.PROTECT,
        related_name="encounters",
        verbose_name=_("professional"),
    )
    appointment = models.OneToOneField(
        "scheduling.Appointment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="encounter",
        verbose_name=_("appointment"),
    )
    service_name = models.CharField(_("service"), max_length=150, blank=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=EncounterStatus.choices,
        default=EncounterStatus.DRAFT,
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finalized_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("opened by"),
    )

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "patient", "-started_at"], name="records_enc_patient"),
            models.Index(fields=["professional", "status"], name="records_enc_prof_status"),
        ]
        verbose_name = _("encounter")
        verbose_name_plural = _("encounters")

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M} · {self.professional}"

    @property
    def is_finalized(self) -> bool:
        return self.status == EncounterStatus.FINALIZED


class EntryKind(models.TextChoices):
    """The sections CFM 1.638/2002 art. 5 names, plus vitals and wellness scales."""

    CHIEF_COMPLAINT = "chief_complaint", _("chief complaint")
    HPI = "hpi", _("history of present illness")
    ANAMNESIS = "anamnesis", _("anamnesis")
    PHYSICAL_EXAM = "physical_exam", _("physical examination")
    EXAMS_REQUESTED = "exams_requested", _("complementary exams requested")
    EXAM_RESULTS = "exam_results", _("exam results")
    DIAGNOSIS = "diagnosis", _("diagnoses (CID-10)")
    PLAN = "plan", _("treatment / plan")
    PROTOCOLS = "protocols", _("protocols applied")
    EVOLUTION = "evolution", _("evolution notes")
    VITALS = "vitals", _("vital signs")
    SCALES = "scales", _("wellness scales")


class EntryStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    FINALIZED = "finalized", _("signed")


class Entry(ClinicOwned):
    """One section of an encounter, in one version.

    ``content`` is JSON: ``{"text": …}`` for narrative sections, ``{"answers": …}`` with
    ``template_version`` for anamnesis/evolution forms, the vitals or scales by key, and
    ``{"items": [{"code", "kind", "principal"}]}`` for diagnoses.

    Author and council are snapshots at writing time (the professional's registration may
    change later; the record must say who signed under which number).

    A finalized entry is never updated or deleted (PostgreSQL trigger; ``save`` refuses it
    on other databases). A correction is a new finalized row with ``supersedes`` pointing at
    the previous version and a mandatory ``justification``; inactivation is an
    :class:`EntryInactivation` row. Every finalized row is a link of the patient's hash chain:
    ``chain_seq``, ``prev_hash`` and ``entry_hash`` (SHA-256 of ``prev_hash`` and the
    canonical JSON of the row, see ``clinic.records.chain``)."""

    encounter = models.ForeignKey(
        Encounter, on_delete=models.PROTECT, related_name="entries", verbose_name=_("encounter")
    )
    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.PROTECT,
        related_name="record_entries",
        verbose_name=_("patient"),
    )
    kind = models.CharField(_("section"), max_length=20, choices=EntryKind.choices)
    content = models.JSONField(_("content"), default=dict)
    template_version = models.ForeignKey(
        ClinicalTemplateVersion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("template version"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=EntryStatus.choices, default=EntryStatus.DRAFT
    )
    confidential = models.BooleanField(
        _("confidential"),
        default=False,
        help_text=_("Visible to its author only (e.g. psychotherapy notes)."),
    )
    version = models.PositiveIntegerField(_("version"), default=1)
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        verbose_name=_("corrects"),
    )
    justification = models.TextField(_("justification of the correction"), blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("author"),
    )
    author_name = models.CharField(_("author's name"), max_length=255)
    council = models.CharField(_("council"), max_length=10, blank=True)
    council_number = models.CharField(_("council number"), max_length=20, blank=True)
    council_state = models.CharField(_("council state (UF)"), max_length=2, blank=True)
    created_at = models.DateTimeField(_("written at"), default=timezone.now)
    updated_at = models.DateTimeField(_("saved at"), default=timezone.now)
    finalized_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    chain_seq = models.PositiveIntegerField(_("chain position"), null=True, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64, blank=True)
    entry_hash = models.CharField(_("hash"), max_length=64, blank=True)

    class Meta:
        ordering = ["encounter", "kind", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "chain_seq"],
                condition=models.Q(chain_seq__isnull=False),
                name="records_entry_chain_seq",
            ),
            # One draft per section of an encounter: autosave updates it in place.
            models.UniqueConstraint(
                fields=["encounter", "kind", "author"],
                condition=models.Q(status="draft"),
                name="records_entry_one_draft",
            ),
            models.CheckConstraint(
                condition=models.Q(supersedes__isnull=True) | ~models.Q(justification=""),
                name="records_entry_correction_justified",
            ),
        ]
        indexes = [models.Index(fields=["patient", "chain_seq"], name="records_entry_chain")]
        verbose_name = _("record entry")
        verbose_name_plural = _("record entries")

    def __str__(self):
        return f"{self.get_kind_display()} v{self.version}"

    @property
    def is_finalized(self) -> bool:
        return self.status == EntryStatus.FINALIZED

    @property
    def council_display(self) -> str:
        """E.g. ``CRM 123456/SP``."""
        state = f"/{self.council_state}" if self.council_state else ""
        return f"{self.council} {self.council_number}{state}".strip()

    def save(self, *args, **kwargs):
        # SQLite has no trigger: refuse here too (PostgreSQL refuses even raw SQL).
        if self.pk is not None and not self._state.adding:
            stored = Entry.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored == EntryStatus.FINALIZED:
                raise ValidationError(_("A signed record entry cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_finalized:
            raise ValidationError(_("A signed record entry cannot be deleted."))
        return super().delete(*args, **kwargs)


class EntryInactivation(ClinicOwned):
    """A signed entry declared void (never deleted): shown struck through, with the reason.
    Append-only."""

    entry = models.OneToOneField(
        Entry, on_delete=models.PROTECT, related_name="inactivation", verbose_name=_("entry")
    )
    justification = models.TextField(_("justification"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("entry inactivation")
        verbose_name_plural = _("entry inactivations")

    def __str__(self):
        return f"{self.entry} ✗"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValidationError(_("An inactivation cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("An inactivation cannot be deleted."))


class BreakGlass(ClinicOwned):
    """A clinical user outside the patient's care opened their record in an emergency
    ("break the glass", SBIS NGS1.03), with a written reason. Valid for a few hours;
    append-only; the clinical director is told through the outbox."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    patient = models.ForeignKey(
        "clinic.Patient", on_delete=models.PROTECT, related_name="+", verbose_name=_("patient")
    )
    reason = models.TextField(_("reason"))
    at = models.DateTimeField(_("at"), default=timezone.now)
    expires_at = models.DateTimeField(_("valid until"))

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["user", "patient", "-expires_at"], name="records_glass")]
        verbose_name = _("emergency access")
        verbose_name_plural = _("emergency accesses")

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} · {self.user}"


def _attachment_key(instance, filename: str) -> str:
    # A random key: no patient name, CPF or original file name in the storage path.
    return f"records/{instance.clinic_id}/{secrets.token_hex(16)}"


class Attachment(ClinicOwned):
    """A photo, scan or exam PDF of an encounter. Stored under a random key through Django's
    storage API, served only by the access-checking view."""

    encounter = models.ForeignKey(
        Encounter,
        on_delete=models.PROTECT,
        related_name="attachments",
        verbose_name=_("encounter"),
    )
    patient = models.ForeignKey(
        "clinic.Patient", on_delete=models.PROTECT, related_name="+", verbose_name=_("patient")
    )
    file = models.FileField(_("file"), upload_to=_attachment_key, max_length=200)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=60)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    description = models.CharField(_("description"), max_length=200, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        ordering = ["uploaded_at"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self):
        return self.original_name
