"""The text of a message: a named template of the catalogue (or the clinic's own text for
it, ``MessageTemplate``) rendered with the patient's and the sender's variables."""

from __future__ import annotations

from dataclasses import dataclass

from clinic.models import Clinic, Patient
from clinic.validators import phone_format

from . import catalogue
from .models import MessageTemplate


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str
    variables: list[str]  # values in the order of the Meta template's parameters
    meta_name: str
    meta_language: str


def template_texts(*, clinic: Clinic | int, name: str) -> tuple[str, str, str, str]:
    """(body, subject, meta name, meta language) of a template for a clinic: its active
    override where it has one, else the catalogue's default."""
    spec = catalogue.spec_for(name)
    override = MessageTemplate.objects.for_clinic(clinic).filter(name=name, is_active=True).first()
    if override is None:
        return spec.body, spec.subject, spec.meta_name, spec.meta_language
    return (
        override.body,
        override.subject or spec.subject,
        override.meta_template_name or spec.meta_name,
        override.meta_language or spec.meta_language,
    )


def patient_context(patient: Patient) -> dict[str, str]:
    """The variables every template may use."""
    clinic = patient.clinic
    return {
        "first_name": patient.first_name,
        "clinic": clinic.name,
        "clinic_phone": phone_format(clinic.phone) if clinic.phone else "",
    }


def message_render(*, patient: Patient, template: str, context: dict) -> Rendered:
    """The text a patient gets from ``template`` with ``context`` (plus the common
    variables)."""
    spec = catalogue.spec_for(template)
    body, subject, meta_name, meta_language = template_texts(
        clinic=patient.clinic_id, name=template
    )
    full = {**patient_context(patient), **{k: "" if v is None else v for k, v in context.items()}}
    return Rendered(
        body=catalogue.render(body, full),
        subject=catalogue.render(subject, full) if subject else "",
        variables=[str(full.get(name, "")) for name in spec.variables],
        meta_name=meta_name,
        meta_language=meta_language,
    )
