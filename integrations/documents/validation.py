"""Reading signatures back: ``validate_pdf`` says Válida / Inválida / Indeterminada, with
the cause, the signer, the CPF and the time, the way the ITI validator would answer.

- invalid: the signed bytes changed, the CMS does not verify, the certificate was revoked
  or lacks non-repudiation, or the file was changed after the certification in a way DocMDP
  P=2 does not allow;
- indeterminate: the signature itself is intact but trust cannot be established (no chain to
  the given roots, no revocation data), or the PDF holds no signature;
- valid: intact, trusted, unmodified.

Our own ``/SubFilter /PBAD.PAdES`` signatures are read (older pyHanko ignored them,
pyHanko #845; tests pin it).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from io import BytesIO

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints

from . import _aio
from .certificates import Trust, _fetched_crls, holder_name, person_data


class SignatureState(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"

    @property
    def label(self) -> str:
        return str(STATE_LABELS[self])


STATE_LABELS = {
    SignatureState.VALID: pgettext_lazy("signature state", "Valid"),
    SignatureState.INVALID: pgettext_lazy("signature state", "Invalid"),
    SignatureState.INDETERMINATE: pgettext_lazy("signature state", "Indeterminate"),
}


@dataclass(frozen=True)
class Validation:
    """The verdict on one PDF (its first signature, the professional's)."""

    state: SignatureState
    cause: str
    signer_name: str = ""
    cpf: str = ""
    signed_at: dt.datetime | None = None
    subfilter: str = ""
    policy_oid: str = ""
    document_type: str = ""
    council: tuple[str, str] | None = None
    signatures: int = 0
    details: dict = field(default_factory=dict, compare=False)

    @property
    def is_valid(self) -> bool:
        return self.state is SignatureState.VALID


def _info_entries(reader: PdfFileReader) -> dict[str, str]:
    try:
        info = reader.trailer["/Info"]
    except KeyError:
        return {}
    out = {}
    for key, value in info.items():
        name = str(key)[1:]
        if name.startswith("2.16.76.1."):
            out[name] = str(value)
    return out


def _policy_oid(embedded) -> str:
    attrs = embedded.signer_info["signed_attrs"]
    for attr in attrs:
        if attr["type"].dotted == "1.2.840.113549.1.9.16.2.15":
            value = attr["values"][0]
            return value.chosen["sig_policy_id"].dotted
    return ""


def validate_pdf(pdf_bytes: bytes, trust_roots: Trust | list[x509.Certificate]) -> Validation:
    """Validate the professional's signature of ``pdf_bytes`` against ``trust_roots`` (a
    ``Trust`` with roots and CRLs, or a plain list of root certificates)."""
    trust = trust_roots if isinstance(trust_roots, Trust) else Trust(roots=tuple(trust_roots))
    try:
        reader = PdfFileReader(BytesIO(pdf_bytes), strict=False)
        signatures = reader.embedded_regular_signatures
    except (PdfReadError, ValueError, KeyError) as exc:
        return Validation(
            state=SignatureState.INVALID,
            cause=_("The file is not a readable PDF: %(error)s") % {"error": exc},
        )
    if not signatures:
        return Validation(
            state=SignatureState.INDETERMINATE, cause=_("The document carries no signature.")
        )
    embedded = signatures[0]
    cert = x509.load_der_x509_certificate(embedded.signer_cert.dump())
    data = person_data(cert)
    info = _info_entries(reader)
    document_type = next((k for k in info if k.startswith("2.16.76.1.12.1.")), "")
    council = None
    if "2.16.76.1.4.2.2.1" in info:
        council = (info["2.16.76.1.4.2.2.1"], info.get("2.16.76.1.4.2.2.2", ""))
    base = {
        "signer_name": holder_name(cert),
        "cpf": data.cpf if data else "",
        "signed_at": embedded.self_reported_timestamp,
        "subfilter": str(embedded.sig_object.get("/SubFilter", ""))[1:],
        "document_type": document_type,
        "council": council,
        "signatures": len(signatures),
    }
    try:
        base["policy_oid"] = _policy_oid(embedded)
    except (KeyError, ValueError, AttributeError):
        base["policy_oid"] = ""

    chain = [
        x509.load_der_x509_certificate(c.dump())
        for c in embedded.other_embedded_certs
        if c.dump() != embedded.signer_cert.dump()
    ]
    # Judged now, not at the time the signer wrote in /M (self-reported, and AD-RB carries
    # no timestamp to prove it): a certificate revoked or expired since is not "valid".
    context = trust.validation_context(chain=chain, crls=_fetched_crls(trust, [cert, *chain]))
    try:
        status = _aio.run(
            async_validate_pdf_signature(
                embedded,
                signer_validation_context=context,
                key_usage_settings=KeyUsageConstraints(key_usage={"non_repudiation"}),
            )
        )
    except SignatureValidationError as exc:
        return Validation(state=SignatureState.INVALID, cause=str(exc), **base)

    if not status.intact or not status.valid:
        return Validation(
            state=SignatureState.INVALID,
            cause=_("The document was changed after it was signed, or the signature is broken."),
            **base,
        )
    level = status.modification_level
    if (level is not None and level > ModificationLevel.FORM_FILLING) or not status.docmdp_ok:
        return Validation(
            state=SignatureState.INVALID,
            cause=_("The document was changed after it was signed."),
            **base,
        )
    if status.revocation_details is not None:
        return Validation(
            state=SignatureState.INVALID,
            cause=_("The signer's certificate was revoked."),
            **base,
        )
    if not status.trusted:
        summary = status.trust_problem_indic
        return Validation(
            state=SignatureState.INDETERMINATE,
            cause=_("The signer's certificate could not be traced to a trusted root (%(why)s).")
            % {"why": getattr(summary, "name", summary) or _("no path")},
            **base,
        )
    return Validation(state=SignatureState.VALID, cause=_("The signature is valid."), **base)


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)
