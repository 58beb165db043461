"""HTML → PDF with WeasyPrint, an A4 pt-BR page, QR codes and the signature footer.

WeasyPrint needs Pango (and HarfBuzz, fontconfig) from the system: ``.ci/run`` and
``make setup`` install them (Debian: libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
fonts-dejavu-core), as they do Chromium for the browser tests.

Rendering never reaches the network: the URL fetcher serves ``data:`` URIs and files under
the project (or the given ``base_url`` folder) only, so a template that carries patient- or
professional-typed text cannot make the server fetch an internal address (SSRF).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

import segno
from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext as _
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher

from .errors import DocumentError

#: A4 page, 2 cm margins, DejaVu (installed with the system fonts: covers every pt-BR
#: letter), page numbers bottom right and the footer text, when given, bottom left.
A4_CSS = """
@page {
  size: A4;
  margin: 20mm 18mm 24mm 18mm;
  @bottom-right { content: counter(page) " / " counter(pages); font-size: 8pt; color: #444; }
  @bottom-left { content: var(--cuidar-footer, ""); font-size: 7.5pt; color: #333;
                 width: 150mm; }
}
html { font-family: "DejaVu Sans", sans-serif; font-size: 10.5pt; line-height: 1.4;
       color: #111; }
h1 { font-size: 15pt; margin: 0 0 6mm; }
h2 { font-size: 12pt; margin: 5mm 0 2mm; }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
.cuidar-signature-block { margin-top: 12mm; page-break-inside: avoid; }
.cuidar-qr { float: right; width: 28mm; height: 28mm; }
.cuidar-qr svg, .cuidar-qr img { width: 28mm; height: 28mm; }
.cuidar-footer { font-size: 7.5pt; color: #333; border-top: 0.3pt solid #999;
                 padding-top: 1.5mm; }
"""


class LocalOnlyFetcher(URLFetcher):
    """WeasyPrint's fetcher limited to ``data:`` and local files under ``roots``."""

    def __init__(self, roots: Iterable[Path], **kwargs):
        super().__init__(allowed_protocols={"data", "file"}, fail_on_errors=False, **kwargs)
        self.roots = [Path(r).resolve() for r in roots]

    def fetch(self, url, headers=None):
        if url.lower().startswith("file:"):
            path = Path(unquote(urlparse(url).path)).resolve()
            if not any(path.is_relative_to(root) for root in self.roots):
                raise ValueError(f"file outside the allowed folders: {path}")
        return super().fetch(url, headers)


def _roots(base_url: str | None) -> list[Path]:
    roots = [Path(settings.BASE_DIR)]
    static_root = getattr(settings, "STATIC_ROOT", None)
    if static_root:
        roots.append(Path(static_root))
    if base_url and not urlparse(base_url).scheme.startswith("http"):
        local = urlparse(base_url).path if base_url.startswith("file:") else base_url
        roots.append(Path(local))
    return roots


def render_pdf(
    html: str,
    *,
    base_url: str | None = None,
    stylesheets: Iterable[str | CSS] = (),
    page_css: bool = True,
) -> bytes:
    """The PDF of ``html`` (a whole document or a fragment), A4 unless a stylesheet says
    otherwise. ``stylesheets`` are CSS strings or ``weasyprint.CSS`` objects, applied after
    the A4 defaults."""
    if not html or not html.strip():
        raise DocumentError(_("There is nothing to render: the document is empty."))
    sheets = [CSS(string=A4_CSS)] if page_css else []
    sheets += [s if isinstance(s, CSS) else CSS(string=s) for s in stylesheets]
    fetcher = LocalOnlyFetcher(_roots(base_url))
    document = HTML(string=html, base_url=base_url or str(settings.BASE_DIR), url_fetcher=fetcher)
    return document.write_pdf(stylesheets=sheets)


def footer_css(text: str) -> str:
    """A stylesheet that prints ``text`` in every page's bottom-left margin box."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f':root {{ --cuidar-footer: "{quoted}"; }}'


def long_date(value: dt.date | dt.datetime, *, tz=None) -> str:
    """A date as a document's place-and-date line writes it, in the active language: in
    pt-BR "6 de dezembro de 2026" (an aware datetime is taken in ``tz``/the current zone)."""
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value, tz)
    text = formats.date_format(value, _("F j, Y"))
    if (translation.get_language() or "").startswith("pt"):
        # Portuguese writes month names in lower case (Django's catalogue capitalises them).
        month = formats.date_format(value, "F")
        text = text.replace(month, month.lower())
    return text


# --- QR codes (segno: already the project's QR library for PIX; pure Python, SVG and PNG) ---
def qr_svg(data: str, *, scale: int = 3) -> str:
    """The QR code of ``data`` as inline SVG markup (escaped by segno; safe to mark safe)."""
    return segno.make(data, error="m", micro=False).svg_inline(scale=scale, border=2)


def qr_png_data_uri(data: str, *, scale: int = 4) -> str:
    """The QR code as a PNG ``data:`` URI, for ``<img src=…>``."""
    return segno.make(data, error="m", micro=False).png_data_uri(scale=scale, border=2)


# --- The signature footer ---------------------------------------------------------------------
def signature_footer(*, signer_name: str, signed_at: dt.datetime, state_label: str, tz=None) -> str:
    """The line printed under a signed document, in the active language; in pt-BR:
    "Documento assinado digitalmente de acordo com a ICP-Brasil, MP 2.200-2/2001, por …,
    às …. Estado da assinatura: …". The time is shown in ``tz`` (the clinic's, default
    the current time zone)."""
    local = timezone.localtime(signed_at, tz) if timezone.is_aware(signed_at) else signed_at
    when = formats.date_format(local, "SHORT_DATETIME_FORMAT")
    return _(
        "Digitally signed in accordance with ICP-Brasil, MP 2.200-2/2001, by %(name)s, at "
        "%(time)s. Signature status: %(state)s."
    ) % {"name": signer_name, "time": when, "state": state_label}


def signature_footer_html(**kwargs) -> str:
    return f'<p class="cuidar-footer">{escape(signature_footer(**kwargs))}</p>'
