"""The encounter form's structured sections — vitals and wellness scales — and how any
entry's content is shown. What a number means (units, possible and normal ranges, BMI,
the scales' anchors) lives in ``vitals``; this module puts it on the encounter page.

Values are stored as JSON numbers (floats): the chart and the hash chain read them back
exactly as written."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from . import vitals
from .models import EntryKind
from .template_engine import HEADING, render_answers

K = EntryKind


@dataclass
class Section:
    """A structured part of the encounter form, filled by a sub-form (``form_class``) whose
    fields appear on the encounter form with ``prefix``."""

    kind: str
    title: str
    prefix: str
    form_class: type

    def field_names(self, form) -> list[str]:
        return [name for name in form.fields if name.startswith(self.prefix)]

    def clean(self, form) -> None:
        """Validate the sub-form on the encounter form's data; its errors land on the
        prefixed fields; the values are kept for ``content``."""
        data = {
            key[len(self.prefix) :]: value
            for key, value in form.data.items()
            if key.startswith(self.prefix)
        }
        sub = self.form_class(data=data)
        if not sub.is_valid():
            for name, errors in sub.errors.items():
                target = f"{self.prefix}{name}" if name != "__all__" else None
                for error in errors:
                    form.add_error(target, error)
            self.values = {}
            return
        self.values = {key: _number(value) for key, value in sub.values().items()}

    def content(self, cleaned_data) -> tuple[dict | None, object]:
        return (dict(self.values) or None), None


def _number(value):
    """A JSON number: whole values as integers (128, not 128.0), others as floats."""
    if isinstance(value, int):
        return value
    return int(value) if value == value.to_integral_value() else float(value)


def extra_sections(form, encounter) -> list[Section]:
    sections = [
        Section(K.VITALS, _("Vital signs"), "vital_", vitals.VitalsForm),
        Section(K.SCALES, _("Wellness scales (0–10)"), "scale_", vitals.WellnessForm),
    ]
    for section in sections:
        for name, field in section.form_class().fields.items():
            form.fields[f"{section.prefix}{name}"] = field
    return sections


def initial_for(kind: str, content: dict) -> dict:
    """The encounter form's initial values from a draft of a structured section."""
    prefix = {K.VITALS: "vital_", K.SCALES: "scale_"}.get(kind)
    if prefix is None:
        return {}
    return {f"{prefix}{key}": value for key, value in content.items() if key != "bmi"}


def _vitals_html(content: dict) -> str:
    readings = vitals.assess(content)
    return format_html(
        '<dl class="record-values">{}</dl>',
        format_html_join(
            "",
            "<dt>{}</dt><dd>{}{}</dd>",
            (
                (
                    r.label.capitalize(),
                    r.display,
                    format_html(' <strong class="record-flag">({})</strong>', r.flag_label)
                    if r.flag
                    else "",
                )
                for r in readings
            ),
        ),
    )


def _scales_html(content: dict) -> str:
    rows = (
        (str(scale.label).capitalize(), content[key])
        for key, scale in vitals.WELLNESS_SCALES.items()
        if key in content
    )
    return format_html(
        '<dl class="record-values">{}</dl>',
        format_html_join("", "<dt>{}</dt><dd>{}/10</dd>", rows),
    )


def _answers_html(entry, content: dict) -> str:
    """A template's answers, shown with the version they were written with (its labels,
    units and headings), whatever the template became since."""
    version = entry.template_version
    items = render_answers(version, content.get("answers"))
    rows, heading = [], None
    for item in items:
        if item["kind"] == HEADING:
            heading = item["label"]  # shown only above an answered field
        elif item["answered"]:
            if heading is not None:
                rows.append(format_html('<dt class="record-heading">{}</dt><dd></dd>', heading))
                heading = None
            rows.append(format_html("<dt>{}</dt><dd>{}</dd>", item["label"], item["value_display"]))
    name = (
        format_html(
            '<p class="record-quiet record-template-name">{} (v{})</p>',
            version.template.name,
            version.number,
        )
        if version is not None
        else ""
    )
    text = (
        format_html('<div class="record-text">{}</div>', content["text"])
        if content.get("text")
        else ""
    )
    return format_html(
        '{}<dl class="record-values record-answers">{}</dl>{}',
        name,
        format_html_join("", "{}", ((row,) for row in rows)),
        text,
    )


def render_content(entry) -> str:
    """An entry's content as HTML (escaped)."""
    content = entry.content or {}
    if content.get("answers") and entry.template_version_id:
        return _answers_html(entry, content)
    if "text" in content:
        return format_html('<div class="record-text">{}</div>', content["text"])
    if entry.kind == K.VITALS:
        return _vitals_html(content)
    if entry.kind == K.SCALES:
        return _scales_html(content)
    if entry.kind == K.DIAGNOSIS:
        return format_html(
            '<ul class="record-diagnoses">{}</ul>',
            format_html_join(
                "",
                "<li><strong class='record-cid'>{}</strong> {} "
                "<span class='record-quiet'>({}{})</span></li>",
                (
                    (
                        item.get("code"),
                        item.get("description", ""),
                        _("definitive diagnosis")
                        if item.get("certainty") == "definitive"
                        else _("diagnostic hypothesis"),
                        ", " + _("principal") if item.get("principal") else "",
                    )
                    for item in content.get("items", [])
                ),
            ),
        )
    return format_html(
        '<dl class="record-values">{}</dl>',
        format_html_join("", "<dt>{}</dt><dd>{}</dd>", sorted(content.items())),
    )
