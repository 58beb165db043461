"""Nuvem Fiscal: the OAuth token and its cache, and the wire format of issuing, reading and
cancelling NFS-e, replayed offline from recorded requests and answers (``responses`` stubs the
network).

The shapes follow the OpenAPI models (``Nfse``, ``NfseListagem``, ``NfseCancelamento``,
``NfseMensagemRetorno``); the shape of a 4xx body is not documented there, so the error
fixtures use the common ``{"error": {"code", "message", "errors"}}`` form and the adapter
reads other forms too.
"""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import responses
import time_machine
from django.core.cache import cache
from responses import matchers

import integrations.fiscal.nuvemfiscal  # noqa: F401  (registers the adapter)
from integrations import http, registry
from integrations.base import (
    Customer,
    InvoiceRequest,
    InvoiceUpdate,
    PermanentProviderError,
    TransientProviderError,
)
from integrations.models import ExternalCall, InboundWebhook, ProviderAccount

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent
TOKEN_URL = "https://auth.nuvemfiscal.com.br/oauth/token"
API = "https://api.sandbox.nuvemfiscal.com.br"
NFSE_ID = "nfs_3ba1f1a6e04a4e1b9a9c3f0a6d2f1c7e"
CLIENT_ID = "nf-client-8d1e2f"
CLIENT_SECRET = "nf-secret-0a9b8c7d6e5f"
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzY29wZSI6Im5mc2UifQ.c2lnbmF0dXJh"
BEARER = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
LOOKUP = {"cpf_cnpj": "18765499000199", "ambiente": "homologacao", "referencia": "pay-123"}
REASON = "Serviço não prestado: paciente faltou"
NOW = datetime(2026, 5, 4, 13, 0, tzinfo=UTC)
MARIA = Customer(
    name="Maria José Araújo",
    cpf_cnpj="529.982.247-25",
    email="maria@example.com",
    phone="+55 11 98765-4321",
)


def recorded(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def empty_cache_and_no_backoff_sleep(monkeypatch):
    cache.clear()
    monkeypatch.setattr(http, "_sleep", lambda seconds: None)
    yield
    cache.clear()


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="fiscal",
        provider="nuvemfiscal",
        settings={
            "environment": "homologacao",
            "cnpj": "18.765.499/0001-99",
            "codigo_municipio": "3550308",
            "item_lista_servico": "040801",
            "codigo_tributario_municipio": "040800101",
            "aliquota": 2,
        },
        credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )


def nuvem(account):
    return registry.get("fiscal", "nuvemfiscal")(account)


def invoice(**changes) -> InvoiceRequest:
    fields = {
        "reference": "pay-123",
        "amount": Decimal("150.00"),
        "description": "Sessão de fisioterapia em 04/05/2026",
        "customer": MARIA,
        "issued_on": date(2026, 5, 4),
        **changes,
    }
    return InvoiceRequest(**fields)


def token_is_issued():
    return responses.post(
        TOKEN_URL,
        json=recorded("token_response.json"),
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "scope": "nfse",
                }
            )
        ],
    )


def lookup_answers(fixture: str):
    return responses.get(
        f"{API}/nfse",
        json=recorded(fixture),
        match=[matchers.query_param_matcher(LOOKUP), matchers.header_matcher(BEARER)],
    )


def calls_to(url: str, method: str = "") -> list:
    return [
        c
        for c in responses.calls
        if c.request.url.split("?")[0] == url and (not method or c.request.method == method)
    ]


# --- Token ----------------------------------------------------------------------------------
@responses.activate
def test_the_token_is_fetched_once_and_cached_for_the_account(account):
    token = token_is_issued()
    lookup = lookup_answers("list_authorized.json")

    nuvem(account).get_invoice("pay-123")
    nuvem(account).get_invoice("pay-123")

    assert token.call_count == 1
    assert lookup.call_count == 2


@responses.activate
def test_a_token_is_fetched_again_shortly_before_it_expires(account):
    token = token_is_issued()
    lookup_answers("list_authorized.json")

    with time_machine.travel(NOW, tick=False) as traveller:
        nuvem(account).get_invoice("pay-123")
        traveller.shift(timedelta(seconds=2592000 - 59))
        nuvem(account).get_invoice("pay-123")

    assert token.call_count == 2


@responses.activate
def test_new_credentials_never_reuse_the_old_token(account):
    token = token_is_issued()
    responses.post(TOKEN_URL, json=recorded("token_response.json"))
    lookup_answers("list_authorized.json")

    nuvem(account).get_invoice("pay-123")
    account.credentials = {"client_id": CLIENT_ID, "client_secret": "rotated-secret-1234"}
    nuvem(account).get_invoice("pay-123")

    assert token.call_count == 1
    assert len(calls_to(TOKEN_URL)) == 2


@responses.activate
def test_a_token_refused_by_the_api_is_replaced_once(account):
    token = token_is_issued()
    responses.get(f"{API}/nfse", status=401, json=recorded("error_unauthorized.json"))
    lookup_answers("list_authorized.json")

    result = nuvem(account).get_invoice("pay-123")

    assert result.status == "authorized"
    assert token.call_count == 2


@responses.activate
def test_refused_client_credentials_are_a_permanent_error(account):
    responses.post(TOKEN_URL, status=401, json=recorded("token_refused.json"))

    with pytest.raises(PermanentProviderError) as caught:
        nuvem(account).get_invoice("pay-123")

    assert "Client authentication failed." in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)


# --- Issuing --------------------------------------------------------------------------------
@responses.activate
@time_machine.travel(NOW, tick=False)
def test_it_looks_the_reference_up_then_sends_the_dps_with_the_bearer_token(account):
    token_is_issued()
    lookup_answers("list_empty.json")
    responses.post(
        f"{API}/nfse/dps",
        json=recorded("nfse_processing.json"),
        match=[
            matchers.json_params_matcher(recorded("issue_request.json")),
            matchers.header_matcher(BEARER),
        ],
    )

    result = nuvem(account).issue(invoice())

    assert result == InvoiceUpdate(reference="pay-123", status="processing")


@responses.activate
def test_the_amount_has_two_decimals_and_the_rate_is_a_percentage_on_the_wire(account):
    token_is_issued()
    lookup_answers("list_empty.json")
    responses.post(f"{API}/nfse/dps", json=recorded("nfse_processing.json"))

    nuvem(account).issue(invoice(amount=Decimal("89.9"), iss_rate=Decimal("0.05")))

    body = calls_to(f"{API}/nfse/dps")[0].request.body.decode()
    assert '"vServ": 89.9' in body
    assert '"pAliq": 5.0' in body


@responses.activate
def test_the_customers_address_goes_in_the_dps_names(account):
    token_is_issued()
    lookup_answers("list_empty.json")
    responses.post(f"{API}/nfse/dps", json=recorded("nfse_processing.json"))
    address = {
        "street": "Rua Augusta",
        "number": "1500",
        "district": "Consolação",
        "city": "São Paulo",
        "city_code": "3550308",
        "postal_code": "01304-001",
    }

    nuvem(account).issue(invoice(extra={"address": address}))

    body = json.loads(calls_to(f"{API}/nfse/dps")[0].request.body)
    assert body["infDPS"]["toma"]["end"] == {
        "endNac": {"cMun": "3550308", "CEP": "01304001"},
        "xLgr": "Rua Augusta",
        "nro": "1500",
        "xBairro": "Consolação",
    }
    assert "address" not in body


@responses.activate
def test_the_nacional_flag_and_production_pick_the_provider_and_the_host(account):
    account.settings.update({"nacional": "true", "environment": "producao"})
    token_is_issued()
    responses.get("https://api.nuvemfiscal.com.br/nfse", json=recorded("list_empty.json"))
    responses.post("https://api.nuvemfiscal.com.br/nfse/dps", json=recorded("nfse_processing.json"))

    nuvem(account).issue(invoice())

    body = json.loads(calls_to("https://api.nuvemfiscal.com.br/nfse/dps")[0].request.body)
    assert (body["provedor"], body["ambiente"], body["infDPS"]["tpAmb"]) == (
        "nacional",
        "producao",
        1,
    )


@responses.activate
def test_issuing_the_same_reference_twice_returns_the_existing_invoice(account):
    token_is_issued()
    responses.get(f"{API}/nfse", json=recorded("list_empty.json"))
    responses.get(f"{API}/nfse", json=recorded("list_processing.json"))
    responses.post(f"{API}/nfse/dps", json=recorded("nfse_processing.json"))

    first = nuvem(account).issue(invoice())
    again = nuvem(account).issue(invoice())

    assert first == again == InvoiceUpdate(reference="pay-123", status="processing")
    assert len(calls_to(f"{API}/nfse/dps")) == 1


@responses.activate
def test_a_refusal_because_the_reference_exists_answers_the_invoice_that_won(account):
    token_is_issued()
    responses.get(f"{API}/nfse", json=recorded("list_empty.json"))
    responses.post(f"{API}/nfse/dps", status=409, json=recorded("error_duplicate_reference.json"))
    responses.get(f"{API}/nfse", json=recorded("list_authorized.json"))

    result = nuvem(account).issue(invoice())

    assert result.status == "authorized"
    assert result.number == "1245"


@responses.activate
def test_an_invoice_the_city_denied_is_sent_again_under_its_reference(account):
    token_is_issued()
    lookup_answers("list_denied.json")
    responses.post(f"{API}/nfse/dps", json=recorded("nfse_processing.json"))

    result = nuvem(account).issue(invoice())

    assert result.status == "processing"
    assert len(calls_to(f"{API}/nfse/dps")) == 1


@responses.activate
def test_a_rejected_request_becomes_an_error_update_with_the_messages(account):
    token_is_issued()
    lookup_answers("list_empty.json")
    responses.post(f"{API}/nfse/dps", status=400, json=recorded("error_validation.json"))

    result = nuvem(account).issue(invoice())

    assert result == InvoiceUpdate(
        reference="pay-123",
        status="error",
        errors=["infDPS.toma.CPF: CPF inválido. (InvalidValue)"],
    )


@pytest.mark.parametrize("status", [429, 500, 503])
@responses.activate
def test_429_and_5xx_on_sending_are_transient_and_the_post_is_not_repeated(account, status):
    token_is_issued()
    lookup_answers("list_empty.json")
    responses.post(f"{API}/nfse/dps", status=status)

    with pytest.raises(TransientProviderError):
        nuvem(account).issue(invoice())

    # A repeated referencia's fate is undocumented: the next attempt looks it up first.
    assert len(calls_to(f"{API}/nfse/dps")) == 1


# --- Reading --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("list_processing.json", "processing"),
        ("list_authorized.json", "authorized"),
        ("list_denied.json", "error"),
        ("list_failed.json", "error"),
        ("list_cancelled.json", "cancelled"),
        ("list_replaced.json", "cancelled"),
    ],
)
@responses.activate
def test_each_nuvem_fiscal_status_is_mapped(account, fixture, status):
    token_is_issued()
    lookup_answers(fixture)

    assert nuvem(account).get_invoice("pay-123").status == status


@responses.activate
def test_an_authorised_invoice_has_its_number_code_and_api_links(account):
    token_is_issued()
    lookup_answers("list_authorized.json")

    result = nuvem(account).get_invoice("pay-123")

    assert result == InvoiceUpdate(
        reference="pay-123",
        status="authorized",
        number="1245",
        verification_code="35503082218765499000199000000000124526058123456789",
        pdf_url=f"{API}/nfse/{NFSE_ID}/pdf",
        xml_url=f"{API}/nfse/{NFSE_ID}/xml",
    )


@responses.activate
def test_a_denied_invoice_reads_as_plain_messages_with_the_correction(account):
    token_is_issued()
    lookup_answers("list_denied.json")

    result = nuvem(account).get_invoice("pay-123")

    assert result.errors == [
        "O código de tributação nacional informado não existe. "
        "Correção: Informe um código da lista de serviços nacional. (E0312)",
        "Alíquota informada difere da parametrizada pelo município. (E0620)",
    ]


@pytest.mark.parametrize("fixture", ["list_empty.json", "list_other_reference.json"])
@responses.activate
def test_a_reference_without_invoice_is_a_permanent_not_found(account, fixture):
    token_is_issued()
    lookup_answers(fixture)

    with pytest.raises(PermanentProviderError) as caught:
        nuvem(account).get_invoice("pay-123")

    assert caught.value.http_status == 404


# --- Cancelling -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "status", "errors"),
    [
        ("cancel_done.json", "cancelled", []),
        ("cancel_pending.json", "processing", []),
        (
            "cancel_refused.json",
            "authorized",
            ["Prazo para cancelamento da NFS-e expirado; solicite a análise fiscal. (E0840)"],
        ),
    ],
)
@responses.activate
def test_it_cancels_by_the_invoice_id_with_the_reason(account, fixture, status, errors):
    token_is_issued()
    lookup_answers("list_authorized.json")
    responses.post(
        f"{API}/nfse/{NFSE_ID}/cancelamento",
        json=recorded(fixture),
        match=[
            matchers.json_params_matcher(recorded("cancel_request.json")),
            matchers.header_matcher(BEARER),
        ],
    )

    result = nuvem(account).cancel("pay-123", REASON)

    assert (result.status, result.errors) == (status, errors)
    assert result.number == "1245"


@responses.activate
def test_cancelling_an_invoice_already_cancelled_answers_it_without_a_call(account):
    token_is_issued()
    lookup_answers("list_cancelled.json")

    result = nuvem(account).cancel("pay-123", REASON)

    assert result.status == "cancelled"
    assert calls_to(f"{API}/nfse/{NFSE_ID}/cancelamento") == []


@pytest.mark.parametrize("reason", ["", "Cancelada", "x" * 256])
@responses.activate
def test_a_short_or_long_justification_is_refused_before_any_call(account, reason):
    with pytest.raises(PermanentProviderError) as caught:
        nuvem(account).cancel("pay-123", reason)

    assert "15" in str(caught.value)
    assert len(responses.calls) == 0
    assert ExternalCall.objects.count() == 0


# --- Health and webhooks --------------------------------------------------------------------
@responses.activate
def test_health_is_ok_when_a_token_is_issued(account):
    token_is_issued()

    result = nuvem(account).health()

    assert result.ok
    assert "nfse" in result.detail


@responses.activate
def test_health_is_not_ok_with_refused_credentials(account):
    responses.post(TOKEN_URL, status=401, json=recorded("token_refused.json"))

    result = nuvem(account).health()

    assert not result.ok
    assert "Client authentication failed." in result.detail


def test_health_names_what_is_missing(clinic_a):
    account = ProviderAccount(clinic=clinic_a, kind="fiscal", provider="nuvemfiscal")

    result = nuvem(account).health()

    assert not result.ok
    assert "client_id" in result.detail


def test_nuvem_fiscal_sends_no_webhooks_so_the_endpoint_refuses_them(client, account):
    response = client.post(
        f"/webhooks/nuvemfiscal/{account.webhook_token}/",
        data=b'{"status": "autorizada"}',
        content_type="application/json",
    )

    assert response.status_code == 404
    assert InboundWebhook.objects.count() == 0
