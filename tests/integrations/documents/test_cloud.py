"""The cloud-signing chain with the console provider (development): a session, its DEV
certificate, a signature that validates against the DEV root only."""

import pytest

from integrations.base import ChainFailed
from integrations.documents import DocumentType, SignatureState, cloud, sign_pdf, validate_pdf
from integrations.documents.console import dev_trust
from integrations.models import ConsoleRecord

from .conftest import CPF

pytestmark = pytest.mark.django_db


def test_the_console_provider_signs_with_a_dev_certificate(clinic_a, pdf):
    session = cloud.authorize(clinic_a, cpf=CPF, otp="123456")
    assert session.provider == "console"
    identity = cloud.identity(session)
    signed = sign_pdf(
        pdf,
        identity,
        document_type=DocumentType.EXAM_REQUEST,
        council=("12345", "SP"),
        cpf=CPF,
        trust=dev_trust(),
    )
    assert validate_pdf(signed, dev_trust()).state is SignatureState.VALID
    assert "DEV" in identity.certificate.issuer.rfc4514_string()
    operations = set(
        ConsoleRecord.objects.filter(clinic=clinic_a, kind="signing").values_list(
            "operation", flat=True
        )
    )
    assert operations == {"authorize", "sign_hash"}


def test_a_console_signature_is_never_valid_against_real_roots(clinic_a, pdf, pki):
    session = cloud.authorize(clinic_a, cpf=CPF, otp="123456")
    signed = sign_pdf(
        pdf,
        cloud.identity(session),
        document_type=DocumentType.PRESCRIPTION,
        council=("12345", "SP"),
        cpf=CPF,
        trust=dev_trust(),
    )
    assert validate_pdf(signed, [pki.root.certificate]).state is SignatureState.INDETERMINATE


def test_the_console_refuses_a_malformed_one_time_password(clinic_a):
    with pytest.raises(ChainFailed):
        cloud.authorize(clinic_a, cpf=CPF, otp="12")
