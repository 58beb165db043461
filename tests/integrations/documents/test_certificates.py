"""Signer checks made before every signature: each failure refuses with its own reason."""

import pytest
import responses
from cryptography.hazmat.primitives.serialization import Encoding
from django.utils import translation

from integrations.documents import SignerRefused, Trust, check_signer, load_a1, person_data
from integrations.documents.devca import DevPKI
from integrations.documents.devca import person_data as encode_person_data

from .conftest import CPF, OTHER_CPF, PASSWORD, days, issue


def test_it_reads_the_cpf_and_birth_date_from_the_icp_brasil_other_name(identity):
    data = person_data(identity.certificate)
    assert data.cpf == CPF
    assert data.birth_date == "01011980"
    assert identity.name == "MARIA DA SILVA SOUZA"  # the ":CPF" suffix of the CN is dropped


def test_it_parses_the_doc_icp_04_layout_field_by_field():
    raw = encode_person_data(cpf="12345678909", birth_date="31121975", nis="10987654321")
    from integrations.documents.certificates import _other_name_text

    text = _other_name_text(raw)
    assert text[:8] == "31121975" and text[8:19] == "12345678909" and text[19:30] == "10987654321"


def test_it_accepts_the_professionals_own_certificate(identity, trust):
    assert check_signer(identity, cpf="529.982.247-25", trust=trust).cpf == CPF


def test_it_refuses_a_certificate_of_another_cpf(identity, trust):
    with translation.override("pt-br"), pytest.raises(SignerRefused) as refused:
        check_signer(identity, cpf=OTHER_CPF, trust=trust)
    assert refused.value.reason == SignerRefused.CPF_MISMATCH
    assert "outra pessoa" in refused.value.message  # pt-BR, the default language


def test_it_refuses_an_expired_certificate(pki, trust):
    _, expired = issue(pki, not_before=days(-400), not_after=days(-1))
    with pytest.raises(SignerRefused) as refused:
        check_signer(expired, cpf=CPF, trust=trust)
    assert refused.value.reason == SignerRefused.EXPIRED


def test_it_refuses_a_certificate_not_yet_valid(pki, trust):
    _, early = issue(pki, not_before=days(2), not_after=days(300))
    with pytest.raises(SignerRefused) as refused:
        check_signer(early, cpf=CPF, trust=trust)
    assert refused.value.reason == SignerRefused.NOT_YET_VALID


def test_it_refuses_a_certificate_without_non_repudiation(pki, trust):
    _, auth_only = issue(pki, non_repudiation=False)
    with pytest.raises(SignerRefused) as refused:
        check_signer(auth_only, cpf=CPF, trust=trust)
    assert refused.value.reason == SignerRefused.NO_NON_REPUDIATION


def test_it_refuses_a_revoked_certificate(pki):
    person, revoked = issue(pki)
    pki.revoke(person.certificate)
    trust = Trust(roots=(pki.root.certificate,), crls=tuple(pki.crls()))
    with pytest.raises(SignerRefused) as refused:
        check_signer(revoked, cpf=CPF, trust=trust)
    assert refused.value.reason == SignerRefused.REVOKED


def test_it_refuses_when_no_revocation_list_can_be_had(identity, pki):
    trust = Trust(roots=(pki.root.certificate,))  # no CRLs, no fetcher
    with pytest.raises(SignerRefused) as refused:
        check_signer(identity, cpf=CPF, trust=trust)
    assert refused.value.reason == SignerRefused.REVOCATION_UNKNOWN


def test_it_refuses_a_certificate_from_another_authority(identity):
    stranger = DevPKI.create()
    trust = Trust(roots=(stranger.root.certificate,), crls=tuple(stranger.crls()))
    with pytest.raises(SignerRefused) as refused:
        check_signer(identity, cpf=CPF, trust=trust)
    assert refused.value.reason == SignerRefused.UNTRUSTED


def test_it_refuses_without_configured_trust_roots(identity, settings):
    settings.CUIDAR_ICP_TRUST_ROOTS = ""
    with pytest.raises(SignerRefused) as refused:
        check_signer(identity, cpf=CPF)
    assert refused.value.reason == SignerRefused.UNTRUSTED


@pytest.mark.django_db
def test_it_fetches_the_crls_named_in_the_certificates_through_the_http_layer(
    identity, pki, tmp_path, settings
):
    root_pem = tmp_path / "roots.pem"
    root_pem.write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    settings.CUIDAR_ICP_TRUST_ROOTS = str(root_pem)
    root_crl, ca_crl = pki.crls()
    with responses.RequestsMock() as rsps:
        rsps.get("http://dev-pki.cuidar.invalid/ca.crl", body=ca_crl.public_bytes(Encoding.DER))
        rsps.get("http://dev-pki.cuidar.invalid/root.crl", body=root_crl.public_bytes(Encoding.DER))
        assert check_signer(identity, cpf=CPF).cpf == CPF
        assert len(rsps.calls) == 2


def test_it_refuses_a_wrong_pkcs12_password(a1_file):
    with pytest.raises(SignerRefused) as refused:
        load_a1(a1_file, "wrong")
    assert refused.value.reason == SignerRefused.BAD_PASSWORD


def test_it_refuses_a_file_that_is_not_pkcs12():
    with pytest.raises(SignerRefused) as refused:
        load_a1(b"not a certificate", PASSWORD)
    assert refused.value.reason in {SignerRefused.UNREADABLE, SignerRefused.BAD_PASSWORD}


@pytest.mark.django_db
def test_a_certificate_without_its_chain_is_completed_from_the_configured_intermediates(
    identity, pki, tmp_path, settings
):
    # Cloud certificates arrive without their chain: the issuing CA comes from settings.
    from integrations.documents import SigningIdentity

    bare = SigningIdentity(certificate=identity.certificate, chain=(), signer=identity.signer)
    roots, cas = tmp_path / "roots.pem", tmp_path / "cas.pem"
    roots.write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    cas.write_bytes(pki.ca.certificate.public_bytes(Encoding.PEM))
    settings.CUIDAR_ICP_TRUST_ROOTS = str(roots)
    root_crl, ca_crl = pki.crls()
    with responses.RequestsMock() as rsps:
        rsps.get("http://dev-pki.cuidar.invalid/ca.crl", body=ca_crl.public_bytes(Encoding.DER))
        rsps.get("http://dev-pki.cuidar.invalid/root.crl", body=root_crl.public_bytes(Encoding.DER))
        settings.CUIDAR_ICP_INTERMEDIATES = ""
        with pytest.raises(SignerRefused) as refused:
            check_signer(bare, cpf=CPF)
        assert refused.value.reason == SignerRefused.UNTRUSTED
        settings.CUIDAR_ICP_INTERMEDIATES = str(cas)
        assert check_signer(bare, cpf=CPF).cpf == CPF
