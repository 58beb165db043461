"""WeasyPrint rendering: A4, pt-BR text, no network, QR codes, the footer."""

import datetime as dt
from io import BytesIO

import pytest
from django.utils import translation
from pyhanko.pdf_utils.reader import PdfFileReader

from integrations.documents import (
    DocumentError,
    qr_png_data_uri,
    qr_svg,
    render_pdf,
    signature_footer,
)
from integrations.documents.rendering import LocalOnlyFetcher, footer_css
from integrations.documents.validation import SignatureState


def test_it_renders_an_a4_pdf(pdf):
    assert pdf.startswith(b"%PDF-")
    page = PdfFileReader(BytesIO(pdf)).root["/Pages"]["/Kids"][0].get_object()
    box = [float(v) for v in page["/MediaBox"]]
    width, height = box[2] - box[0], box[3] - box[1]
    assert (round(width), round(height)) == (595, 842)  # A4 in points


def test_it_refuses_an_empty_document():
    with pytest.raises(DocumentError):
        render_pdf("   ")


def test_it_never_fetches_from_the_network(tmp_path):
    fetcher = LocalOnlyFetcher([tmp_path])
    with pytest.raises(ValueError):
        fetcher.fetch("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(ValueError):
        fetcher.fetch("file:///etc/passwd")
    inside = tmp_path / "logo.svg"
    inside.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert fetcher.fetch(inside.as_uri()).status in (None, 200)


def test_a_page_with_an_internal_address_still_renders_without_it():
    html = '<p>Olá</p><img src="http://169.254.169.254/x.png">'
    assert render_pdf(html).startswith(b"%PDF-")


def test_qr_codes_come_as_inline_svg_and_png():
    url = "https://cuidar.example/v/ABC123"
    assert qr_svg(url).startswith("<svg")
    assert qr_png_data_uri(url).startswith("data:image/png;base64,")
    pdf = render_pdf(f'<div class="cuidar-qr">{qr_svg(url)}</div><p>Código ABC123</p>')
    assert pdf.startswith(b"%PDF-")


def test_the_footer_says_what_the_law_asks_in_portuguese():
    signed_at = dt.datetime(2026, 12, 6, 13, 5, tzinfo=dt.UTC)
    with translation.override("pt-br"):
        text = signature_footer(
            signer_name="Maria da Silva Souza",
            signed_at=signed_at,
            state_label=SignatureState.VALID.label,
            tz=dt.timezone(dt.timedelta(hours=-3)),
        )
    assert text == (
        "Documento assinado digitalmente de acordo com a ICP-Brasil, MP 2.200-2/2001, por "
        "Maria da Silva Souza, às 06/12/2026 10:05. Estado da assinatura: Válida."
    )


def test_the_footer_goes_into_every_page_margin():
    css = footer_css('Assinado por "Maria"')
    assert '\\"Maria\\"' in css
    assert render_pdf("<p>x</p>", stylesheets=[css]).startswith(b"%PDF-")


def test_the_place_and_date_line_is_written_the_brazilian_way():
    from integrations.documents import long_date

    with translation.override("pt-br"):
        assert long_date(dt.date(2026, 12, 6)) == "6 de dezembro de 2026"
    with translation.override("en"):
        assert long_date(dt.date(2026, 12, 6)) == "December 6, 2026"
