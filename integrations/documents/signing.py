"""PAdES signatures the ITI validator accepts: ICP-Brasil policy AD-RB, ``/Filter
/PBAD_PAdES`` and ``/SubFilter /PBAD.PAdES``, a DocMDP P=2 certification through a
signature reference, and the health-document metadata (document type, council number and
state) in the document information dictionary.

Why the low-level pyHanko embedder rather than ``PdfSigner``: ``PdfSigner`` hard-codes
``/Filter /Adobe.PPKLite`` and, for a certification, writes ``/Perms /DocMDP`` into the
catalogue; ITI's "Orientações" page (validar.iti.gov.br/orientacoes.html) advises against
``/Perms`` and asks for the DocMDP transform in ``/Reference``. ``PdfCMSEmbedder`` lets us
place a signature dictionary of our own and apply only the reference.

No CMS signing-time attribute: PAdES forbids it (ETSI EN 319 142-1, 5.2.2.3 — the time is
``/M`` in the signature dictionary), pyHanko leaves it out of PAdES signatures, and one
implementer reports the ITI validator approving only without it (CLINICAL.md).
"""

from __future__ import annotations

import datetime as dt
from io import BytesIO

from asn1crypto import algos
from django.utils.translation import gettext as _
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.sign.ades.api import CAdESSignedAttrSpec
from pyhanko.sign.ades.cades_asn1 import (
    SignaturePolicyId,
    SignaturePolicyIdentifier,
    SigPolicyQualifierInfo,
    SigPolicyQualifierInfos,
)
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers.cms_embedder import (
    PdfCMSEmbedder,
    SigIOSetup,
    SigMDPSetup,
    SigObjSetup,
)
from pyhanko.sign.signers.pdf_byterange import SignatureObject
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

from . import _aio, policy
from .certificates import SigningIdentity, Trust, check_signer
from .errors import DocumentError

FIELD_NAME = "AssinaturaICPBrasil"
DIGEST = "sha256"
#: Room for the CMS in the file (hex doubles it): an RSA-4096 chain of four fits.
BYTES_RESERVED = 16 * 1024


class PbadSignatureObject(SignatureObject):
    """A signature dictionary with the ICP-Brasil filter (DOC-ICP-15.03 / PA_PAdES_AD_RB):
    ``/Filter /PBAD_PAdES``, ``/SubFilter /PBAD.PAdES``."""

    def __init__(self, **kwargs):
        super().__init__(subfilter=SigSeedSubFilter.PBAD_PADES, **kwargs)
        self[pdf_name("/Filter")] = pdf_name("/PBAD_PAdES")


class ReferenceOnlyDocMDP(SigMDPSetup):
    """DocMDP certification written only as the signature's ``/Reference`` (``/SigRef``,
    ``/TransformMethod /DocMDP``, ``/TransformParams << /P 2 /V /1.2 >>``), without the
    catalogue's ``/Perms`` entry, as ITI's orientation page asks."""

    def apply(self, sig_obj_ref, writer):
        from pyhanko.sign.signers.cms_embedder import docmdp_reference_dictionary

        sig_obj_ref.get_object()["/Reference"] = generic.ArrayObject(
            [docmdp_reference_dictionary(self.docmdp_perms)]
        )


def signature_policy() -> SignaturePolicyIdentifier:
    """The AD-RB signature-policy-identifier attribute: OID, SigPolicyHash, SPURI."""
    return SignaturePolicyIdentifier(
        {
            "signature_policy_id": SignaturePolicyId(
                {
                    "sig_policy_id": policy.policy_oid(),
                    "sig_policy_hash": algos.DigestInfo(
                        {
                            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                            "digest": policy.policy_hash(),
                        }
                    ),
                    "sig_policy_qualifiers": SigPolicyQualifierInfos(
                        [
                            SigPolicyQualifierInfo(
                                {
                                    "sig_policy_qualifier_id": "sp_uri",
                                    "sig_qualifier": _ia5(policy.policy_uri()),
                                }
                            )
                        ]
                    ),
                }
            )
        }
    )


def _ia5(text: str):
    from asn1crypto.core import IA5String

    return IA5String(text)


def health_metadata(
    *, document_type: policy.DocumentType, council: tuple[str, str], council_kind=None
) -> dict[str, str]:
    """The information-dictionary entries the ITI validator reads: the document type's OID
    (empty value) and the council number and state (Lacuna's PKI-suite samples write them
    there, keyed by OID)."""
    council_kind = council_kind or policy.Council.CRM
    number, state = (str(council[0]).strip(), str(council[1]).strip().upper())
    if not number or state not in policy.BRAZILIAN_STATES:
        raise DocumentError(
            _("The council registration needs a number and a Brazilian state (UF)."),
            fields={"council": [_("Give the registration number and its state, e.g. 12345/SP.")]},
        )
    return {
        document_type.value: "",
        council_kind.number_oid: number,
        council_kind.state_oid: state,
    }


def _write_info(writer: IncrementalPdfFileWriter, entries: dict[str, str]) -> None:
    try:
        info_ref = writer.trailer.raw_get("/Info")
    except KeyError:
        info_ref = None
    if info_ref is None:
        info_ref = writer.add_object(generic.DictionaryObject())
        writer.trailer[pdf_name("/Info")] = info_ref
    info = info_ref.get_object()
    for key, value in entries.items():
        info[pdf_name("/" + key)] = generic.TextStringObject(value)
    writer.mark_update(info_ref)


def sign_pdf(
    pdf_bytes: bytes,
    signer: SigningIdentity,
    *,
    document_type: policy.DocumentType,
    council: tuple[str, str],
    cpf: str,
    council_kind: policy.Council | None = None,
    trust: Trust | None = None,
    at: dt.datetime | None = None,
    reason: str = "",
    location: str = "",
) -> bytes:
    """Sign ``pdf_bytes`` with ``signer`` for the professional whose CPF is ``cpf`` and
    return the signed PDF. ``check_signer`` runs first: an expired, revoked, foreign or
    non-signing certificate is refused (``SignerRefused``) before anything is signed."""
    at = at or dt.datetime.now(dt.UTC)
    check_signer(signer, cpf=cpf, trust=trust, at=at)
    metadata = health_metadata(
        document_type=document_type, council=council, council_kind=council_kind
    )
    try:
        writer = IncrementalPdfFileWriter(BytesIO(pdf_bytes), strict=False)
    except (PdfReadError, ValueError) as exc:
        raise DocumentError(
            _("The document is not a readable PDF: %(error)s") % {"error": exc}
        ) from None
    _write_info(writer, metadata)

    embedder = PdfCMSEmbedder(new_field_spec=SigFieldSpec(sig_field_name=FIELD_NAME))
    cms_writer = embedder.write_cms(field_name=FIELD_NAME, writer=writer)
    next(cms_writer)
    sig_obj = PbadSignatureObject(
        timestamp=at,
        bytes_reserved=BYTES_RESERVED,
        name=signer.name or None,
        reason=reason or None,
        location=location or None,
    )
    cms_writer.send(
        SigObjSetup(
            sig_placeholder=sig_obj,
            mdp_setup=ReferenceOnlyDocMDP(
                md_algorithm=DIGEST, certify=True, docmdp_perms=MDPPerm.FILL_FORMS
            ),
        )
    )
    prepared, output = cms_writer.send(SigIOSetup(md_algorithm=DIGEST, in_place=False))
    pyhanko_signer = signer.signer
    attr_settings = PdfCMSSignedAttributes(
        cades_signed_attrs=CAdESSignedAttrSpec(signature_policy_identifier=signature_policy())
    )
    signed_attrs = _aio.run(
        pyhanko_signer.signed_attrs(
            prepared.document_digest, DIGEST, attr_settings=attr_settings, use_pades=True
        )
    )
    presign = getattr(pyhanko_signer, "presign", None)
    if presign is not None:
        # A remote key (cloud certificate): its network call is made here, in plain sync
        # code, not inside pyHanko's event loop (Django's ORM and HTTP call log refuse to
        # run there). The CMS is then assembled around the signature it returned.
        presign(signed_attrs.dump(), DIGEST)
    cms = _aio.run(pyhanko_signer.async_sign_prescribed_attributes(DIGEST, signed_attrs))
    cms_writer.send(cms)
    return output.getvalue()
