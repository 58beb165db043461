"""BirdID (PSC API): the wire format of authorize, certificate discovery and sign-hash,
replayed offline (``responses``). The recordings follow BirdID's published documentation;
the certificate and the signature are made at test time with the DEV PKI so that the
signed PDF can be validated end to end."""

import base64
import json

import pytest
import responses
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils
from cryptography.hazmat.primitives.serialization import Encoding
from responses import matchers

from integrations.base import ChainFailed, PermanentProviderError
from integrations.documents import (
    DocumentType,
    SignatureState,
    Trust,
    cloud,
    render_pdf,
    sign_pdf,
    validate_pdf,
)
from integrations.documents.devca import DevPKI
from integrations.models import ExternalCall, ProviderAccount
from tests.contract.recordings import recordings

pytestmark = pytest.mark.django_db

BASE = "https://apihom.birdid.com.br"
CPF = "52998224725"
OTP = "123456"
raw, recorded = recordings(__file__)
AUTH = recorded("pwd_authorize_response.json")
ALIAS = recorded("certificate_discovery_response.json")["certificates"][0]["alias"]


@pytest.fixture(scope="module")
def pki():
    return DevPKI.create()


@pytest.fixture(scope="module")
def person(pki):
    return pki.issue_person(name="MARIA DA SILVA SOUZA", cpf=CPF)


@pytest.fixture
def account(clinic_a):
    request = recorded("pwd_authorize_request.json")
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="signing",
        provider="birdid",
        priority=1,
        settings={"base_url": BASE},
        credentials={"client_id": request["client_id"], "client_secret": request["client_secret"]},
    )


def _stub_authorize(rsps):
    rsps.post(
        f"{BASE}/v0/oauth/pwd_authorize",
        json=AUTH,
        match=[matchers.json_params_matcher(recorded("pwd_authorize_request.json"))],
    )


def _stub_certificates(rsps, person, pki):
    body = recorded("certificate_discovery_response.json")
    body["certificates"][0]["certificate"] = base64.b64encode(
        person.certificate.public_bytes(Encoding.DER)
    ).decode()
    rsps.get(
        f"{BASE}/v0/oauth/certificate-discovery",
        json=body,
        match=[matchers.header_matcher({"Authorization": f"Bearer {AUTH['access_token']}"})],
    )


def _stub_signature(rsps, person, seen):
    def sign(request):
        sent = json.loads(request.body)
        seen.append(sent)
        digest = bytes.fromhex(sent["hashes"][0]["hash"])
        signature = person.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        body = recorded("signature_response.json")
        body["signatures"][0]["raw_signature"] = base64.b64encode(signature).decode()
        return 200, {}, json.dumps(body)

    rsps.add_callback(responses.POST, f"{BASE}/v0/oauth/signature", callback=sign)


def test_it_authorizes_with_the_professionals_one_time_password(clinic_a, account):
    with responses.RequestsMock() as rsps:
        _stub_authorize(rsps)
        session = cloud.authorize(clinic_a, cpf="529.982.247-25", otp=OTP)
    assert session.provider == "birdid"
    assert session.access_token == AUTH["access_token"]
    assert session.account_id == account.pk
    assert AUTH["access_token"] not in repr(session)


def test_a_wrong_one_time_password_is_refused_and_not_retried(clinic_a, account, settings):
    settings.CUIDAR_DEFAULT_PROVIDERS = {}
    with responses.RequestsMock() as rsps:
        rsps.post(
            f"{BASE}/v0/oauth/pwd_authorize",
            status=401,
            json=recorded("pwd_authorize_wrong_otp_response.json"),
        )
        with pytest.raises(ChainFailed) as failed:
            cloud.authorize(clinic_a, cpf=CPF, otp="000000")
        assert len(rsps.calls) == 1
    assert failed.value.permanent
    assert not ExternalCall.objects.filter(error_message__contains="b1rd1d-s3cr3t").exists()


def test_the_chain_falls_back_to_the_next_provider_where_the_cpf_has_no_certificate(
    clinic_a, account
):
    ProviderAccount.objects.create(clinic=clinic_a, kind="signing", provider="console", priority=2)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v0/oauth/pwd_authorize", status=404, json={"error": "user_not_found"})
        session = cloud.authorize(clinic_a, cpf=CPF, otp=OTP)
    assert session.provider == "console"


def test_it_signs_a_pdf_through_birdid_and_the_signature_validates(clinic_a, account, pki, person):
    trust = Trust(
        roots=(pki.root.certificate,), crls=tuple(pki.crls()), extra_certs=(pki.ca.certificate,)
    )
    pdf = render_pdf("<h1>Receita</h1><p>Dipirona 500 mg</p>")
    seen = []
    with responses.RequestsMock() as rsps:
        _stub_authorize(rsps)
        _stub_certificates(rsps, person, pki)
        _stub_signature(rsps, person, seen)
        session = cloud.authorize(clinic_a, cpf=CPF, otp=OTP)
        identity = cloud.identity(session)
        signed = sign_pdf(
            pdf,
            identity,
            document_type=DocumentType.PRESCRIPTION,
            council=("12345", "SP"),
            cpf=CPF,
            trust=trust,
        )
    (request,) = seen
    shape = recorded("signature_request.json")
    assert request.keys() == shape.keys()
    assert request["certificate_alias"] == ALIAS
    assert request["hashes"][0].keys() == shape["hashes"][0].keys()
    assert request["hashes"][0]["hash_algorithm"] == shape["hashes"][0]["hash_algorithm"]
    assert len(bytes.fromhex(request["hashes"][0]["hash"])) == 32
    verdict = validate_pdf(signed, trust)
    assert verdict.state is SignatureState.VALID, verdict.cause
    assert verdict.cpf == CPF


def test_an_answer_without_a_signature_is_a_permanent_error(clinic_a, account, person, pki):
    with responses.RequestsMock() as rsps:
        _stub_authorize(rsps)
        rsps.post(f"{BASE}/v0/oauth/signature", json={"signatures": []})
        session = cloud.authorize(clinic_a, cpf=CPF, otp=OTP)
        provider = cloud.provider_for(session)
        with pytest.raises(PermanentProviderError):
            provider.sign_hash(session, alias=ALIAS, digest=b"\0" * 32, digest_algorithm="sha256")
