"""The encounter form's structured sections — vitals, wellness scales, the anamnesis
template — and how any entry's content is shown. The field definitions, ranges and the
template engine live in ``vitals`` and ``template_engine``; this module puts them on the
encounter page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join

from .models import EntryKind

K = EntryKind


@dataclass
class Section:
    """A structured part of the encounter form: ``content(cleaned_data)`` returns the
    entry's content (None when left empty) and its template version."""

    kind: str
    title: str
    field_names: list[str]
    content: Callable[[dict], tuple[dict | None, object]]


def extra_sections(form, encounter) -> list[Section]:
    return []


def render_content(entry) -> str:
    """An entry's content as HTML (escaped)."""
    content = entry.content or {}
    if "text" in content:
        return format_html('<div class="record-text">{}</div>', content["text"])
    if entry.kind == K.DIAGNOSIS:
        return format_html(
            '<ul class="record-diagnoses">{}</ul>',
            format_html_join(
                "",
                "<li><strong>{}</strong> {} <span class='record-quiet'>{}{}</span></li>",
                (
                    (
                        item.get("code"),
                        item.get("description", ""),
                        item.get("certainty", ""),
                        " · principal" if item.get("principal") else "",
                    )
                    for item in content.get("items", [])
                ),
            ),
        )
    return format_html(
        '<dl class="record-values">{}</dl>',
        format_html_join("", "<dt>{}</dt><dd>{}</dd>", sorted(content.items())),
    )
