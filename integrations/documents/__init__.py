"""Clinical documents, the provider side (issue 22): PDFs rendered with WeasyPrint and signed
as ICP-Brasil PAdES (AD-RB) with pyHanko, signer checks before every signature, validation,
and cloud (A3) signing providers. The clinical record (clinic.records) calls this layer; it
imports nothing of clinic but the kernel. See docs/documents.md.

    pdf = render_pdf(html)
    identity = load_a1(pkcs12_bytes, password)              # or cloud.identity(session)
    signed = sign_pdf(pdf, identity, document_type=DocumentType.PRESCRIPTION,
                      council=("12345", "SP"), cpf=professional_cpf)
    verdict = validate_pdf(signed, default_trust())
"""

from .certificates import (
    PersonData,
    SigningIdentity,
    Trust,
    check_signer,
    default_trust,
    load_a1,
    person_data,
)
from .errors import DocumentError, SignerRefused
from .policy import Council, DocumentType
from .rendering import (
    qr_png_data_uri,
    qr_svg,
    render_pdf,
    signature_footer,
    signature_footer_html,
)
from .signing import sign_pdf
from .validation import SignatureState, Validation, validate_pdf

__all__ = [
    "Council",
    "DocumentError",
    "DocumentType",
    "PersonData",
    "SignatureState",
    "SignerRefused",
    "SigningIdentity",
    "Trust",
    "Validation",
    "check_signer",
    "default_trust",
    "load_a1",
    "person_data",
    "qr_png_data_uri",
    "qr_svg",
    "render_pdf",
    "sign_pdf",
    "signature_footer",
    "signature_footer_html",
    "validate_pdf",
]
