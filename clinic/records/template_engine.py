"""Clinical templates: the schema of a template version's fields, the form it builds, and how
stored answers are shown (pure: reads no rows).

A version's ``fields`` is a JSON list of field definitions, in display order::

    {"type": "number", "key": "waist", "label": "Circunferência da cintura",
     "required": false, "help": "", "unit": "cm", "min": 30, "max": 250, "decimals": 1}

Every definition has ``type``, ``label`` and (except headings) a ``key`` (lower-case letters,
digits and ``_``, unique in the version); ``required`` (default false) and ``help`` are
optional. Types and their own keys:

- ``text`` (one line) and ``long_text`` (a paragraph);
- ``number``: ``unit``, ``min``, ``max``, ``decimals`` (0–4, default 0), all optional;
- ``choice`` (one of) and ``multiple_choice`` (any of): ``choices``, a list of texts;
- ``scale``: 0–10, with optional ``min_label`` / ``max_label`` (what 0 and 10 mean);
- ``yes_no``; ``date``;
- ``heading``: a section title, no answer.

Answers are a JSON object ``{key: value}``: text, a number as a string (exact decimals),
a choice's text, a list of texts, an integer 0–10, true/false, an ISO date.

Interface (issue 20; the encounter stores ``version`` and ``answers``):

- ``validate_schema(fields) -> list[str]``: what is wrong with a definition (empty: valid).
- ``build_form(version, data=None, files=None) -> forms.Form``: the form of a version (or of
  a list of fields); after ``is_valid()``, ``form.answers()`` is the JSON to store and
  ``form.layout`` lists headings and fields in order for the page.
- ``render_answers(version, answers) -> list[dict]``: every heading and field of the version
  with its answer shown (``label``, ``value_display``, ``answered``, ``kind`` …). A version
  never changes once written (template_services.new_version), so an old encounter renders
  with the version it was written with, whatever the template became; answers whose key the
  version lacks are shown at the end rather than lost.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

HEADING = "heading"
TEXT = "text"
LONG_TEXT = "long_text"
NUMBER = "number"
CHOICE = "choice"
MULTIPLE_CHOICE = "multiple_choice"
SCALE = "scale"
YES_NO = "yes_no"
DATE = "date"

FIELD_TYPES = {
    TEXT: gettext_lazy("text"),
    LONG_TEXT: gettext_lazy("long text"),
    NUMBER: gettext_lazy("number"),
    CHOICE: gettext_lazy("single choice"),
    MULTIPLE_CHOICE: gettext_lazy("multiple choice"),
    SCALE: gettext_lazy("scale 0–10"),
    YES_NO: gettext_lazy("yes/no"),
    DATE: gettext_lazy("date"),
    HEADING: gettext_lazy("section heading"),
}
_KEY = re.compile(r"[a-z][a-z0-9_]{0,49}")
_COMMON = {"type", "key", "label", "required", "help"}
_OWN = {
    NUMBER: {"unit", "min", "max", "decimals"},
    CHOICE: {"choices"},
    MULTIPLE_CHOICE: {"choices"},
    SCALE: {"min_label", "max_label"},
}
TEXT_MAX = 500
LONG_TEXT_MAX = 20000


def _fields_of(version) -> list[dict]:
    return list(getattr(version, "fields", version) or [])


def _number(value) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def validate_schema(fields) -> list[str]:
    """What is wrong with ``fields`` (a version's definition), one message each; empty when
    it is valid."""
    if not isinstance(fields, list):
        return [_("The fields must be a list.")]
    if not fields:
        return [_("A template needs at least one field.")]
    errors = []
    seen = set()
    for position, field in enumerate(fields, start=1):
        where = _("Field %(n)s") % {"n": position}
        if not isinstance(field, dict):
            errors.append(_("%(where)s: must be an object.") % {"where": where})
            continue
        kind = field.get("type")
        if kind not in FIELD_TYPES:
            errors.append(
                _("%(where)s: unknown type %(type)r (use one of: %(types)s).")
                % {"where": where, "type": kind, "types": ", ".join(FIELD_TYPES)}
            )
            continue
        label = field.get("label")
        if not isinstance(label, str) or not label.strip():
            errors.append(_("%(where)s: the label is missing.") % {"where": where})
        else:
            where = f"{where} ({label.strip()})"
        unknown = set(field) - _COMMON - _OWN.get(kind, set())
        if unknown:
            errors.append(
                _("%(where)s: unknown settings %(names)s.")
                % {"where": where, "names": ", ".join(sorted(unknown))}
            )
        if not isinstance(field.get("required", False), bool):
            errors.append(_("%(where)s: “required” must be true or false.") % {"where": where})
        if not isinstance(field.get("help", ""), str):
            errors.append(_("%(where)s: the help must be text.") % {"where": where})
        key = field.get("key")
        if kind == HEADING and key is None:
            pass
        elif not isinstance(key, str) or not _KEY.fullmatch(key):
            errors.append(
                _(
                    "%(where)s: the key must start with a lower-case letter and hold only "
                    "lower-case letters, digits and _ (at most 50)."
                )
                % {"where": where}
            )
        elif key in seen:
            errors.append(
                _("%(where)s: the key “%(key)s” is repeated.") % {"where": where, "key": key}
            )
        else:
            seen.add(key)
        if kind == NUMBER:
            errors.extend(_number_errors(field, where))
        if kind in (CHOICE, MULTIPLE_CHOICE):
            choices = field.get("choices")
            if not isinstance(choices, list) or not choices:
                errors.append(_("%(where)s: list at least one choice.") % {"where": where})
            elif not all(isinstance(c, str) and c.strip() for c in choices):
                errors.append(
                    _("%(where)s: every choice must be a non-empty text.") % {"where": where}
                )
            elif len({c.strip() for c in choices}) != len(choices):
                errors.append(_("%(where)s: a choice is repeated.") % {"where": where})
    return errors


def _number_errors(field: dict, where: str) -> list[str]:
    errors = []
    low, high = field.get("min"), field.get("max")
    for name, value in (("min", low), ("max", high)):
        if value is not None and _number(value) is None:
            errors.append(
                _("%(where)s: “%(name)s” must be a number.") % {"where": where, "name": name}
            )
    if _number(low) is not None and _number(high) is not None and _number(low) > _number(high):
        errors.append(_("%(where)s: the minimum is above the maximum.") % {"where": where})
    decimals = field.get("decimals", 0)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 4:
        errors.append(
            _("%(where)s: decimals must be a whole number from 0 to 4.") % {"where": where}
        )
    if not isinstance(field.get("unit", ""), str):
        errors.append(_("%(where)s: the unit must be text.") % {"where": where})
    return errors


def _label(field: dict) -> str:
    label = field["label"].strip()
    unit = field.get("unit") if field["type"] == NUMBER else None
    return f"{label} ({unit})" if unit else label


def _form_field(field: dict) -> forms.Field:
    kind = field["type"]
    common = {
        "label": _label(field),
        "required": bool(field.get("required", False)),
        "help_text": field.get("help", ""),
    }
    if kind == TEXT:
        return forms.CharField(max_length=TEXT_MAX, **common)
    if kind == LONG_TEXT:
        return forms.CharField(
            max_length=LONG_TEXT_MAX, widget=forms.Textarea(attrs={"rows": 4}), **common
        )
    if kind == NUMBER:
        decimals = field.get("decimals", 0)
        low, high = _number(field.get("min")), _number(field.get("max"))
        step = Decimal(1).scaleb(-decimals)
        return forms.DecimalField(
            min_value=low,
            max_value=high,
            decimal_places=decimals,
            max_digits=12,
            step_size=None,
            widget=forms.NumberInput(attrs={"step": str(step)}),
            localize=False,
            **common,
        )
    if kind == CHOICE:
        return forms.ChoiceField(
            choices=[(c, c) for c in field["choices"]], widget=forms.RadioSelect, **common
        )
    if kind == MULTIPLE_CHOICE:
        return forms.MultipleChoiceField(
            choices=[(c, c) for c in field["choices"]],
            widget=forms.CheckboxSelectMultiple,
            **common,
        )
    if kind == SCALE:
        low_label, high_label = field.get("min_label"), field.get("max_label")
        if low_label and high_label and not common["help_text"]:
            common["help_text"] = f"0 = {low_label}, 10 = {high_label}"
        return forms.TypedChoiceField(
            choices=[(str(n), str(n)) for n in range(11)],
            coerce=int,
            empty_value=None,
            widget=forms.RadioSelect,
            **common,
        )
    if kind == YES_NO:
        return forms.TypedChoiceField(
            choices=[("yes", _("Yes")), ("no", _("No"))],
            coerce=lambda value: value == "yes",
            empty_value=None,
            widget=forms.RadioSelect,
            **common,
        )
    if kind == DATE:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    raise ValueError(kind)


class TemplateForm(forms.Form):
    """The form of one template version (built by ``build_form``)."""

    layout: list[tuple[str, str]]  # ("heading", label) or ("field", key), in order

    def answers(self) -> dict:
        """The answers as JSON-ready values (after ``is_valid()``); unanswered fields are
        left out."""
        out = {}
        for key, value in self.cleaned_data.items():
            if value in (None, "", []):
                continue
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, date):
                value = value.isoformat()
            out[key] = value
        return out


def build_form(version, data=None, files=None, *, initial=None, prefix=None) -> TemplateForm:
    """A form of ``version``'s fields (a ClinicalTemplateVersion or its list of fields).
    ``initial`` may be stored answers (a draft being continued)."""
    fields = _fields_of(version)
    form = TemplateForm(data=data, files=files, initial=_initial(fields, initial), prefix=prefix)
    form.layout = []
    for field in fields:
        if field["type"] == HEADING:
            form.layout.append((HEADING, field["label"]))
            continue
        form.fields[field["key"]] = _form_field(field)
        form.layout.append(("field", field["key"]))
    return form


def _initial(fields: list[dict], answers: dict | None) -> dict:
    if not answers:
        return {}
    initial = {}
    for field in fields:
        key = field.get("key")
        if key not in answers:
            continue
        value = answers[key]
        if field["type"] == YES_NO and isinstance(value, bool):
            value = "yes" if value else "no"
        elif field["type"] == SCALE and value is not None:
            value = str(value)
        initial[key] = value
    return initial


def _display(field: dict, value) -> str:
    kind = field["type"]
    if kind == NUMBER:
        number = _number(value)
        if number is None:
            return str(value)
        unit = field.get("unit")
        shown = formats.number_format(number)
        return f"{shown} {unit}" if unit else shown
    if kind == MULTIPLE_CHOICE:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if kind == SCALE:
        return _("%(value)s of 10") % {"value": value}
    if kind == YES_NO:
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        return str(value)
    if kind == DATE:
        try:
            return formats.date_format(date.fromisoformat(str(value)), "SHORT_DATE_FORMAT")
        except ValueError:
            return str(value)
    return str(value)


def render_answers(version, answers: dict | None) -> list[dict]:
    """``version``'s headings and fields with ``answers`` shown, in order: each item has
    ``kind`` ("heading" or "field"), ``label``; fields also ``key``, ``type``, ``value`` (as
    stored), ``value_display`` (text for people: "12,5 cm", "7 de 10", "Sim", "05/03/2026")
    and ``answered``. Answers whose key the version does not have come last, shown as text."""
    answers = answers or {}
    items = []
    known = set()
    for field in _fields_of(version):
        if field["type"] == HEADING:
            items.append({"kind": HEADING, "label": field["label"]})
            continue
        key = field["key"]
        known.add(key)
        value = answers.get(key)
        answered = value not in (None, "", [])
        items.append(
            {
                "kind": "field",
                "key": key,
                "type": field["type"],
                "label": field["label"],
                "value": value,
                "value_display": _display(field, value) if answered else "",
                "answered": answered,
            }
        )
    for key, value in answers.items():
        if key not in known and value not in (None, "", []):
            items.append(
                {
                    "kind": "field",
                    "key": key,
                    "type": TEXT,
                    "label": key,
                    "value": value,
                    "value_display": ", ".join(map(str, value))
                    if isinstance(value, list)
                    else str(value),
                    "answered": True,
                }
            )
    return items
