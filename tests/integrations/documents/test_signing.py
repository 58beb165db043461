"""PAdES signatures as the ITI validator wants them, and reading them back."""

from io import BytesIO

import pytest
from asn1crypto import cms
from django.utils import translation
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from integrations.documents import (
    Council,
    DocumentError,
    DocumentType,
    SignatureState,
    SignerRefused,
    Trust,
    sign_pdf,
    validate_pdf,
)
from integrations.documents.devca import DevPKI
from integrations.documents.policy import AD_RB_POLICY_HASH_SHA256, AD_RB_POLICY_OID

from .conftest import CPF, NAME, OTHER_CPF, days, issue


@pytest.fixture
def signed(pdf, identity, trust):
    return sign_pdf(
        pdf,
        identity,
        document_type=DocumentType.PRESCRIPTION,
        council=("12345", "sp"),
        cpf=CPF,
        trust=trust,
    )


def _signature(signed_pdf):
    reader = PdfFileReader(BytesIO(signed_pdf))
    return reader, reader.embedded_regular_signatures[0]


def test_a_signed_prescription_validates_against_the_root(signed, trust):
    verdict = validate_pdf(signed, trust)
    assert verdict.state is SignatureState.VALID, verdict.cause
    assert verdict.signer_name == NAME
    assert verdict.cpf == CPF
    assert verdict.signed_at is not None
    assert verdict.document_type == DocumentType.PRESCRIPTION.value
    assert verdict.council == ("12345", "SP")


def test_our_own_pbad_pades_signatures_are_read_back(signed, trust):
    # pyHanko #845: older versions skipped /SubFilter /PBAD.PAdES when reading.
    verdict = validate_pdf(signed, trust)
    assert verdict.subfilter == "PBAD.PAdES"
    assert verdict.signatures == 1


def test_the_signature_dictionary_follows_the_icp_brasil_policy(signed):
    reader, embedded = _signature(signed)
    sig = embedded.sig_object
    assert sig["/Filter"] == "/PBAD_PAdES"
    assert sig["/SubFilter"] == "/PBAD.PAdES"
    (reference,) = sig["/Reference"]
    reference = reference.get_object()
    assert reference["/TransformMethod"] == "/DocMDP"
    assert reference["/TransformParams"]["/P"] == 2
    assert reference["/TransformParams"]["/V"] == "/1.2"
    # Certification through the signature reference only, not the catalogue's /Perms.
    assert "/Perms" not in reader.root


def test_the_cms_names_the_ad_rb_policy_with_its_hash_and_has_no_signing_time(signed):
    _, embedded = _signature(signed)
    attrs = {a["type"].dotted: a["values"][0] for a in embedded.signer_info["signed_attrs"]}
    policy = attrs["1.2.840.113549.1.9.16.2.15"].chosen
    assert policy["sig_policy_id"].dotted == AD_RB_POLICY_OID
    assert policy["sig_policy_hash"]["digest"].native.hex() == AD_RB_POLICY_HASH_SHA256
    assert "1.2.840.113549.1.9.5" not in attrs  # signing-time
    assert isinstance(embedded.signed_data, cms.SignedData)


def test_the_document_carries_the_health_metadata_the_iti_validator_reads(pdf, identity, trust):
    signed = sign_pdf(
        pdf,
        identity,
        document_type=DocumentType.MEDICAL_CERTIFICATE,
        council=("998877", "RJ"),
        council_kind=Council.CRM,
        cpf=CPF,
        trust=trust,
    )
    info = PdfFileReader(BytesIO(signed)).trailer["/Info"]
    assert info["/2.16.76.1.12.1.2"] == ""
    assert info["/2.16.76.1.4.2.2.1"] == "998877"
    assert info["/2.16.76.1.4.2.2.2"] == "RJ"


def test_it_signs_nothing_for_a_refused_certificate(pdf, identity, pki, trust):
    with pytest.raises(SignerRefused) as refused:
        sign_pdf(
            pdf,
            identity,
            document_type=DocumentType.PRESCRIPTION,
            council=("12345", "SP"),
            cpf=OTHER_CPF,
            trust=trust,
        )
    assert refused.value.reason == SignerRefused.CPF_MISMATCH
    _, expired = issue(pki, not_before=days(-400), not_after=days(-1))
    with pytest.raises(SignerRefused):
        sign_pdf(
            pdf,
            expired,
            document_type=DocumentType.PRESCRIPTION,
            council=("12345", "SP"),
            cpf=CPF,
            trust=trust,
        )


def test_it_refuses_a_council_without_a_brazilian_state(pdf, identity, trust):
    with pytest.raises(DocumentError):
        sign_pdf(
            pdf,
            identity,
            document_type=DocumentType.PRESCRIPTION,
            council=("12345", "XX"),
            cpf=CPF,
            trust=trust,
        )


def test_a_pdf_changed_in_place_after_signing_is_invalid(signed, trust):
    offset = signed.index(b"/Producer")  # inside the signed byte range
    tampered = signed[:offset] + b"/Producxr" + signed[offset + 9 :]
    verdict = validate_pdf(tampered, trust)
    assert verdict.state is SignatureState.INVALID


def test_a_pdf_with_content_added_after_signing_is_invalid(signed, trust):
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    from pyhanko.pdf_utils import generic

    stream = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 24 Tf 50 50 Td (10 caixas) Tj ET")
    )
    page["/Contents"] = generic.ArrayObject([page.raw_get("/Contents"), stream])
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    with translation.override("pt-br"):
        verdict = validate_pdf(out.getvalue(), trust)
    assert verdict.state is SignatureState.INVALID
    assert "alterado depois de assinado" in verdict.cause


def test_a_signature_from_an_unknown_authority_is_indeterminate(signed):
    stranger = DevPKI.create()
    verdict = validate_pdf(signed, [stranger.root.certificate])
    assert verdict.state is SignatureState.INDETERMINATE
    assert verdict.signer_name == NAME  # who signed is still told


def test_an_unsigned_pdf_is_indeterminate(pdf, trust):
    assert validate_pdf(pdf, trust).state is SignatureState.INDETERMINATE


def test_garbage_is_invalid(trust):
    assert validate_pdf(b"%PDF-1.7 nothing", trust).state is SignatureState.INVALID


def test_a_document_whose_certificate_was_revoked_since_is_invalid(pdf, pki):
    person, identity = issue(pki)
    trust = Trust(roots=(pki.root.certificate,), crls=tuple(pki.crls()))
    signed = sign_pdf(
        pdf,
        identity,
        document_type=DocumentType.PRESCRIPTION,
        council=("12345", "SP"),
        cpf=CPF,
        trust=trust,
    )
    pki.revoke(person.certificate)
    with translation.override("pt-br"):
        verdict = validate_pdf(signed, Trust(roots=(pki.root.certificate,), crls=tuple(pki.crls())))
    assert verdict.state is SignatureState.INVALID
    assert "revogado" in verdict.cause
