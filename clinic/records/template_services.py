"""Writes of clinical templates: a new version of a template's fields, and the default
templates every clinic starts with.

Interface (issue 20):

- ``new_version(template, fields, by) -> ClinicalTemplateVersion``: validates ``fields``
  (``ValidationError`` with template_engine.validate_schema's messages) and writes version
  n+1 — unless the fields equal the latest version's, which is returned unchanged. Versions
  are never updated: an encounter written with version n keeps rendering with it.
- ``latest_version(template)``; ``templates_available(clinic, *, specialty=None, kind=None)``:
  the active templates to choose from, with ``latest_number``.
- ``install_default_templates(clinic, *, by=None) -> int``: gives ``clinic`` the default
  templates of default_templates.py it does not have yet (matched by name), in three
  queries; returns how many it added. Idempotent; runs when a clinic is created (a
  post_save receiver in apps.py) and for the clinics that existed before (migration
  records.0004_default_templates).
"""

from __future__ import annotations

from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import transaction

from .default_templates import DEFAULT_TEMPLATES
from .models import ClinicalTemplate, ClinicalTemplateVersion
from .template_engine import validate_schema


@transaction.atomic
def new_version(template: ClinicalTemplate, fields: list, by=None) -> ClinicalTemplateVersion:
    """Version n+1 of ``template`` with ``fields`` (see the module docstring)."""
    errors = validate_schema(fields)
    if errors:
        raise ValidationError(errors)
    # Lock the template so that two editors saving at once get n+1 and n+2, not a clash.
    ClinicalTemplate.objects.select_for_update().filter(pk=template.pk).first()
    latest = template.versions.order_by("-number").first()
    if latest is not None and latest.fields == fields:
        return latest
    return ClinicalTemplateVersion.objects.create(
        template=template,
        number=(latest.number + 1) if latest else 1,
        fields=fields,
        created_by=by,
    )


def latest_version(template: ClinicalTemplate) -> ClinicalTemplateVersion | None:
    """The version a new encounter is written with."""
    return template.versions.order_by("-number").first()


@transaction.atomic
def install_default_templates(clinic, *, by=None, apps=None) -> int:
    """Add the default templates ``clinic`` lacks (by name); see the module docstring.
    ``apps`` is a migration's app registry when a data migration runs it."""
    registry = apps or django_apps
    template_model = registry.get_model("records", "ClinicalTemplate")
    version_model = registry.get_model("records", "ClinicalTemplateVersion")
    existing = set(
        template_model.objects.filter(clinic_id=clinic.pk).values_list("name", flat=True)
    )
    wanted = [t for t in DEFAULT_TEMPLATES if t["name"] not in existing]
    if not wanted:
        return 0
    template_model.objects.bulk_create(
        [
            template_model(
                clinic_id=clinic.pk, name=t["name"], kind=t["kind"], specialty=t["specialty"]
            )
            for t in wanted
        ]
    )
    created = dict(
        template_model.objects.filter(
            clinic_id=clinic.pk, name__in=[t["name"] for t in wanted]
        ).values_list("name", "pk")
    )
    version_model.objects.bulk_create(
        [
            version_model(
                template_id=created[t["name"]],
                number=1,
                fields=t["fields"],
                created_by_id=getattr(by, "pk", None),
            )
            for t in wanted
        ]
    )
    return len(wanted)


def templates_available(clinic, *, specialty: str | None = None, kind: str | None = None):
    """The clinic's active templates (of ``specialty`` and ``kind`` when given), each with
    ``latest_number`` annotated, for choosing the form of a new encounter."""
    from django.db.models import Max

    rows = ClinicalTemplate.objects.for_clinic(clinic).filter(is_active=True)
    if specialty:
        rows = rows.filter(specialty=specialty)
    if kind:
        rows = rows.filter(kind=kind)
    return rows.annotate(latest_number=Max("versions__number")).order_by(
        "specialty", "kind", "name"
    )
