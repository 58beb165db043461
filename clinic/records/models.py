"""The clinical record's data. CID-10 (DATASUS, version 2008) is global reference data;
everything else belongs to a clinic."""

from django.conf import settings
from django.db import models
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
