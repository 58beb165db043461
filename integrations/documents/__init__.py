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

import importlib

#: Public names → the module that defines them. Imported on first use (PEP 562): the
#: provider registry loads this package's adapters on every chain call, and WeasyPrint and
#: pyHanko are heavy imports that only documents need.
_EXPORTS = {
    "PersonData": "certificates",
    "SigningIdentity": "certificates",
    "Trust": "certificates",
    "check_signer": "certificates",
    "default_trust": "certificates",
    "load_a1": "certificates",
    "person_data": "certificates",
    "DocumentError": "errors",
    "SignerRefused": "errors",
    "Council": "policy",
    "DocumentType": "policy",
    "long_date": "rendering",
    "qr_png_data_uri": "rendering",
    "qr_svg": "rendering",
    "render_pdf": "rendering",
    "signature_footer": "rendering",
    "signature_footer_html": "rendering",
    "sign_pdf": "signing",
    "SignatureState": "validation",
    "Validation": "validation",
    "validate_pdf": "validation",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
    "long_date",
    "person_data",
    "qr_png_data_uri",
    "qr_svg",
    "render_pdf",
    "sign_pdf",
    "signature_footer",
    "signature_footer_html",
    "validate_pdf",
]
