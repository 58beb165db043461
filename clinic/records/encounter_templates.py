"""Specialty templates on the encounter page: which anamnesis / evolution template a
professional writes with, and the form fields it adds to the encounter form.

The answers are stored on the encounter's anamnesis or evolution entry, as
``content["answers"]`` beside an optional free ``content["text"]``, and the entry's
``template_version`` records the version they were written with, so that a signed
encounter renders with that version whatever the template became
(``template_engine.render_answers``).

Choosing (``choose``): the template asked for on the page (``?use_anamnesis=<id>``), else
the template of the author's draft, else the last one the author used for that kind, else
the clinic's template of the professional's specialty; none of them: free text only. The
form is built from the chosen template's latest version; the page posts that version's id
back (``template_<kind>``) so the answers are stored with the version they were typed in.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from .models import ClinicalTemplate, ClinicalTemplateVersion, Entry, EntryKind
from .template_engine import HEADING, build_form

K = EntryKind
KINDS = (K.ANAMNESIS, K.EVOLUTION)

#: Words of a professional's free-text specialty that point at a template specialty.
_SPECIALTY_WORDS = {
    ClinicalTemplate.Specialty.PHYSIOTHERAPY: ("fisio", "physio", "crefito"),
    ClinicalTemplate.Specialty.PSYCHOLOGY: ("psico", "psych", "psic"),
    ClinicalTemplate.Specialty.NUTRITION: ("nutri",),
    ClinicalTemplate.Specialty.INTEGRATIVE: ("acupun", "integrat", "integrativ"),
    ClinicalTemplate.Specialty.GENERAL: ("geral", "general", "clinic", "familia", "medic"),
}


def specialty_of(professional) -> str | None:
    """The template specialty matching the professional's (free-text) specialty, if any."""
    text = unicodedata.normalize("NFKD", (professional.specialty or "").lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    if not text.strip():
        return None
    for specialty, words in _SPECIALTY_WORDS.items():
        if any(word in text for word in words):
            return specialty
    return None


def field_name(kind: str, key: str) -> str:
    return f"tpl_{kind}_{key}"


def version_field(kind: str) -> str:
    return f"template_{kind}"


def picker_field(kind: str) -> str:
    return f"use_{kind}"


@dataclass
class Choice:
    """One kind's template choice on the page: the templates offered, the chosen one and the
    version its form is built from."""

    kind: str
    templates: list = field(default_factory=list)
    version: ClinicalTemplateVersion | None = None

    @property
    def chosen_id(self):
        return self.version.template_id if self.version else None


def _latest(template_ids) -> dict[int, ClinicalTemplateVersion]:
    """The latest version of each template (one query)."""
    latest = {}
    rows = (
        ClinicalTemplateVersion.objects.filter(template_id__in=template_ids)
        .select_related("template")
        .order_by("template_id", "-number")
    )
    for version in rows:
        latest.setdefault(version.template_id, version)
    return latest


def choose(*, encounter, user, query: dict, drafts: dict) -> dict[str, Choice]:
    """The template of each kind for a GET of the encounter page (see the module
    docstring). ``drafts`` maps kind to the author's draft entry; ``query`` is request.GET."""
    templates = list(
        ClinicalTemplate.objects.for_clinic(encounter.clinic_id)
        .filter(is_active=True, kind__in=KINDS)
        .order_by("specialty", "name")
    )
    by_kind = {kind: [t for t in templates if t.kind == kind] for kind in KINDS}
    specialty = specialty_of(encounter.professional)
    wanted = {}
    for kind in KINDS:
        offered = {t.pk: t for t in by_kind[kind]}
        asked = query.get(picker_field(kind))
        if asked is not None:
            wanted[kind] = int(asked) if asked.isdigit() and int(asked) in offered else None
            continue
        draft = drafts.get(kind)
        if draft is not None and draft.template_version_id:
            wanted[kind] = draft.template_version.template_id
            if wanted[kind] in offered:
                continue
        last = (
            Entry.objects.filter(
                clinic_id=encounter.clinic_id,
                author=user,
                kind=kind,
                template_version__isnull=False,
            )
            .order_by("-updated_at")
            .values_list("template_version__template_id", flat=True)
            .first()
        )
        if last in offered:
            wanted[kind] = last
            continue
        matching = [t.pk for t in by_kind[kind] if t.specialty == specialty]
        wanted[kind] = matching[0] if matching else None
    ids = [pk for pk in wanted.values() if pk]
    latest = _latest(ids) if ids else {}
    return {
        kind: Choice(kind=kind, templates=by_kind[kind], version=latest.get(wanted[kind]))
        for kind in KINDS
    }


def posted(*, encounter, data) -> dict[str, Choice]:
    """The versions a POST of the encounter form was typed in (ids the page sent back;
    only versions of this clinic's templates of the right kind count)."""
    ids = {kind: data.get(version_field(kind), "") for kind in KINDS}
    wanted = [int(v) for v in ids.values() if v and str(v).isdigit()]
    versions = {}
    if wanted:
        versions = {
            v.pk: v
            for v in ClinicalTemplateVersion.objects.filter(
                pk__in=wanted, template__clinic_id=encounter.clinic_id
            ).select_related("template")
        }
    templates = list(
        ClinicalTemplate.objects.for_clinic(encounter.clinic_id)
        .filter(is_active=True, kind__in=KINDS)
        .order_by("specialty", "name")
    )
    choices = {}
    for kind in KINDS:
        raw = ids[kind]
        version = versions.get(int(raw)) if raw and str(raw).isdigit() else None
        if version is not None and version.template.kind != kind:
            version = None
        choices[kind] = Choice(
            kind=kind, templates=[t for t in templates if t.kind == kind], version=version
        )
    return choices


def add_fields(form, choices: dict[str, Choice], drafts_answers: dict[str, dict]) -> None:
    """Put each chosen version's fields on the encounter form (named ``tpl_<kind>_<key>``),
    with the draft's answers as initial values; ``form.template_layout[kind]`` lists
    headings and field names in order."""
    form.template_choices = choices
    form.template_layout = {}
    for kind, choice in choices.items():
        form.template_layout[kind] = []
        if choice.version is None:
            continue
        sub = build_form(choice.version, initial=drafts_answers.get(kind))
        for item, value in sub.layout:
            if item == HEADING:
                form.template_layout[kind].append((HEADING, value))
                continue
            name = field_name(kind, value)
            field = sub.fields[value]
            if field.required:
                # A draft may leave it empty (autosave keeps the rest); signing asks for it
                # (services.signing_missing).
                field.required = False
                note = _("Required before signing.")
                field.help_text = f"{field.help_text} {note}" if field.help_text else note
            form.fields[name] = field
            if value in sub.initial and name not in form.initial:
                form.initial[name] = sub.initial[value]
            form.template_layout[kind].append(("field", name))


def answers(form, kind: str) -> dict:
    """The answers of ``kind``'s template as JSON (after validation); empty without one."""
    choice = form.template_choices.get(kind)
    if choice is None or choice.version is None:
        return {}
    sub = build_form(choice.version)
    sub.cleaned_data = {key: form.cleaned_data.get(field_name(kind, key)) for key in sub.fields}
    return sub.answers()
