"""eNotas Gateway: the wire format of issuing, reading and cancelling NFS-e, the health probe
and the webhooks, replayed offline from recorded requests and answers (``responses`` stubs the
network)."""

import json
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import responses
from responses import matchers

import integrations.fiscal.enotas  # noqa: F401  (registers the adapter)
from integrations import registry
from integrations.base import (
    Customer,
    InvoiceRequest,
    InvoiceUpdate,
    PermanentProviderError,
    TransientProviderError,
    WebhookMalformed,
    WebhookRequest,
)
from integrations.inbound import webhook_item
from integrations.models import ExternalCall, InboundWebhook, ProviderAccount
from tests.contract.recordings import recordings

pytestmark = pytest.mark.django_db

EMPRESA = "484FB0C5-969E-46AD-A047-8A0DB54667B4"
COMPANY_URL = f"https://api.enotasgw.com.br/v1/empresas/{EMPRESA}"
ISSUE_URL = f"{COMPANY_URL}/nfes"
NOTE_URL = f"{COMPANY_URL}/nfes/porIdExterno/pay-123"
API_KEY = "ZDU0ZWE5MGQtdGVzdC1rZXktMDAwMA"
AUTH = {"Authorization": f"Basic {API_KEY}"}
WEBHOOK_SECRET = "enotas-hook-secret-3c1d"
REASON = "Serviço não prestado: paciente faltou"
MARIA = Customer(
    name="Maria José Araújo",
    cpf_cnpj="529.982.247-25",
    email="maria@example.com",
    phone="+55 11 98765-4321",
)


raw, recorded = recordings(__file__)


@pytest.fixture
def account(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="fiscal",
        provider="enotas",
        settings={
            "environment": "homologacao",
            "empresa_id": EMPRESA,
            "item_lista_servico": "0408",
            "codigo_tributario_municipio": "040800101",
            "aliquota": "2,00",
        },
        credentials={"api_key": API_KEY},
    )


def enotas(account):
    return registry.get("fiscal", "enotas")(account)


def invoice(**changes) -> InvoiceRequest:
    fields = {
        "reference": "pay-123",
        "amount": Decimal("150"),
        "description": "Sessão de fisioterapia em 04/05/2026",
        "customer": MARIA,
        "issued_on": date(2026, 5, 4),
        **changes,
    }
    return InvoiceRequest(**fields)


def nothing_under_the_reference():
    return responses.get(NOTE_URL, status=404, json=recorded("error_not_found.json"))


def posts() -> list:
    return [c for c in responses.calls if c.request.method == "POST"]


# --- Issuing --------------------------------------------------------------------------------
@responses.activate
def test_it_looks_the_reference_up_then_posts_the_note_with_the_raw_key(account):
    nothing_under_the_reference()
    responses.post(
        ISSUE_URL,
        json=recorded("issue_response.json"),
        match=[
            matchers.json_params_matcher(recorded("issue_request.json")),
            matchers.header_matcher(AUTH),
        ],
    )

    result = enotas(account).issue(invoice())

    assert result == InvoiceUpdate(reference="pay-123", status="processing")


@responses.activate
def test_the_amount_has_two_decimals_and_the_rate_is_a_percentage_on_the_wire(account):
    nothing_under_the_reference()
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))

    enotas(account).issue(invoice(amount=Decimal("99.999"), iss_rate=Decimal("0.03")))

    body = posts()[0].request.body.decode()
    assert '"valorTotal": 100.0' in body
    assert '"aliquotaIss": 3.0' in body


@responses.activate
def test_a_company_customer_goes_as_a_legal_person_in_production(account):
    account.settings["environment"] = "producao"
    nothing_under_the_reference()
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))

    enotas(account).issue(
        invoice(customer=Customer(name="Convênio Saúde S.A.", cpf_cnpj="07.504.505/0001-32"))
    )

    body = json.loads(posts()[0].request.body)
    assert body["ambienteEmissao"] == "Producao"
    assert body["cliente"] == {
        "nome": "Convênio Saúde S.A.",
        "cpfCnpj": "07504505000132",
        "tipoPessoa": "J",
    }


@responses.activate
def test_the_customers_address_goes_in_enotas_names(account):
    nothing_under_the_reference()
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))
    address = {
        "street": "Rua Augusta",
        "number": "1500",
        "complement": "",
        "district": "Consolação",
        "city": "São Paulo",
        "state": "SP",
        "postal_code": "01304-001",
    }

    enotas(account).issue(invoice(extra={"address": address}))

    body = json.loads(posts()[0].request.body)
    assert body["cliente"]["endereco"] == {
        "logradouro": "Rua Augusta",
        "numero": "1500",
        "bairro": "Consolação",
        "cidade": "São Paulo",
        "uf": "SP",
        "cep": "01304001",
    }
    assert "address" not in body


@responses.activate
def test_issuing_the_same_reference_twice_returns_the_existing_invoice(account):
    nothing_under_the_reference()
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))
    responses.get(NOTE_URL, json=recorded("note_authorized.json"))

    first = enotas(account).issue(invoice())
    again = enotas(account).issue(invoice())

    assert first.status == "processing"
    assert (again.status, again.number) == ("authorized", "233")
    assert len(posts()) == 1


@responses.activate
def test_a_refusal_because_the_reference_exists_answers_the_invoice_that_won(account):
    nothing_under_the_reference()
    responses.post(ISSUE_URL, status=400, json=recorded("error_duplicate.json"))
    responses.get(NOTE_URL, json=recorded("note_processing.json"))

    result = enotas(account).issue(invoice())

    assert result == InvoiceUpdate(reference="pay-123", status="processing")


@responses.activate
def test_a_denied_note_is_sent_again_under_its_reference(account):
    responses.get(NOTE_URL, json=recorded("note_denied.json"))
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))

    result = enotas(account).issue(invoice())

    assert result.status == "processing"
    assert json.loads(posts()[0].request.body)["idExterno"] == "pay-123"


@responses.activate
def test_a_rejected_request_becomes_an_error_update_with_the_message(account):
    nothing_under_the_reference()
    responses.post(ISSUE_URL, status=400, json=recorded("error_validation.json"))
    nothing_under_the_reference()

    result = enotas(account).issue(invoice())

    assert result == InvoiceUpdate(
        reference="pay-123",
        status="error",
        errors=["O campo cliente.endereco.cep é obrigatório para esta prefeitura. (1001)"],
    )


@responses.activate
def test_an_invalid_key_is_a_permanent_error(account):
    responses.get(NOTE_URL, status=401, json=recorded("error_invalid_key.json"))

    with pytest.raises(PermanentProviderError) as caught:
        enotas(account).issue(invoice())

    assert "Api key inválida" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert posts() == []


@pytest.mark.parametrize("status", [429, 500, 503])
@responses.activate
def test_429_and_5xx_on_posting_are_transient_and_the_post_is_not_repeated(account, status):
    nothing_under_the_reference()
    responses.post(ISSUE_URL, status=status)

    with pytest.raises(TransientProviderError):
        enotas(account).issue(invoice())

    assert len(posts()) == 1  # the next attempt looks the reference up first


def test_an_account_without_company_id_is_refused_before_any_call(clinic_a):
    account = ProviderAccount(
        clinic=clinic_a, kind="fiscal", provider="enotas", credentials={"api_key": API_KEY}
    )

    with pytest.raises(PermanentProviderError) as caught:
        enotas(account).issue(invoice())

    assert "empresa_id" in str(caught.value)


# --- Reading --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("note_processing.json", "processing"),
        ("note_authorized.json", "authorized"),
        ("note_denied.json", "error"),
        ("note_cancelling.json", "processing"),
        ("note_cancelled.json", "cancelled"),
        ("note_cancel_denied.json", "authorized"),
    ],
)
@responses.activate
def test_each_enotas_status_is_mapped(account, fixture, status):
    responses.get(NOTE_URL, json=recorded(fixture), match=[matchers.header_matcher(AUTH)])

    assert enotas(account).get_invoice("pay-123").status == status


@responses.activate
def test_an_authorised_note_has_its_number_code_and_links(account):
    responses.get(NOTE_URL, json=recorded("note_authorized.json"))

    result = enotas(account).get_invoice("pay-123")

    note = recorded("note_authorized.json")
    assert result == InvoiceUpdate(
        reference="pay-123",
        status="authorized",
        number="233",
        verification_code="ABCD1234",
        pdf_url=note["linkDownloadPDF"],
        xml_url=note["linkDownloadXML"],
    )


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        (
            "note_denied.json",
            "Código do serviço municipal 040800101 não permitido para o prestador.",
        ),
        ("note_cancel_denied.json", "Prazo de cancelamento expirado."),
    ],
)
@responses.activate
def test_the_reason_of_a_refusal_comes_in_the_errors(account, fixture, reason):
    responses.get(NOTE_URL, json=recorded(fixture))

    assert enotas(account).get_invoice("pay-123").errors == [reason]


@responses.activate
def test_an_unknown_reference_is_a_permanent_not_found(account):
    nothing_under_the_reference()

    with pytest.raises(PermanentProviderError) as caught:
        enotas(account).get_invoice("pay-123")

    assert caught.value.http_status == 404


# --- Cancelling -----------------------------------------------------------------------------
@responses.activate
def test_it_asks_for_the_cancellation_by_reference_and_answers_the_note_as_it_stands(account):
    responses.delete(
        NOTE_URL, json=recorded("cancel_response.json"), match=[matchers.header_matcher(AUTH)]
    )
    responses.get(NOTE_URL, json=recorded("note_cancelling.json"))

    result = enotas(account).cancel("pay-123", REASON)

    assert (result.status, result.number) == ("processing", "233")


@responses.activate
def test_a_refused_cancellation_answers_the_note_with_the_reason(account):
    responses.delete(NOTE_URL, status=400, json=recorded("error_cancel_refused.json"))
    responses.get(NOTE_URL, json=recorded("note_processing.json"))

    result = enotas(account).cancel("pay-123", REASON)

    assert result.status == "processing"
    assert result.errors == [
        "A nota fiscal está em processo de emissão e não pode ser cancelada. (1050)"
    ]


@pytest.mark.parametrize("reason", ["", "Engano", "x" * 256])
@responses.activate
def test_a_short_or_long_justification_is_refused_before_any_call(account, reason):
    with pytest.raises(PermanentProviderError) as caught:
        enotas(account).cancel("pay-123", reason)

    assert "255" in str(caught.value)
    assert len(responses.calls) == 0
    assert ExternalCall.objects.count() == 0


# --- Health ---------------------------------------------------------------------------------
@responses.activate
def test_health_reads_the_company(account):
    responses.get(
        COMPANY_URL, json=recorded("company_response.json"), match=[matchers.header_matcher(AUTH)]
    )

    result = enotas(account).health()

    assert result.ok
    assert "Clínica Alfa Fisioterapia Ltda" in result.detail


@responses.activate
def test_health_is_not_ok_with_an_invalid_key(account):
    responses.get(COMPANY_URL, status=401, json=recorded("error_invalid_key.json"))

    result = enotas(account).health()

    assert not result.ok
    assert "Api key inválida" in result.detail


# --- Webhooks -------------------------------------------------------------------------------
def url_for(account, **query) -> str:
    url = f"/webhooks/enotas/{account.webhook_token}/"
    return f"{url}?{urlencode(query)}" if query else url


def with_secret(account):
    account.credentials = {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
    account.save(update_fields=["credentials"])
    return account


def webhook(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://cuidar.example/webhooks/enotas/token/",
        subpath="",
        headers={},
        query={},
        body=body,
        content_type=content_type,
    )


def test_without_a_secret_the_url_token_alone_authenticates(client, account):
    response = client.post(
        url_for(account), data=raw("webhook_authorized.json"), content_type="application/json"
    )

    assert response.status_code == 200
    assert InboundWebhook.objects.count() == 1


def test_a_wrong_url_token_gets_404_and_stores_nothing(client, account):
    response = client.post(
        "/webhooks/enotas/not-the-token/",
        data=raw("webhook_authorized.json"),
        content_type="application/json",
    )

    assert response.status_code == 404
    assert InboundWebhook.objects.count() == 0


def test_a_configured_secret_missing_gets_401_and_stores_nothing(client, account):
    with_secret(account)

    response = client.post(
        url_for(account), data=raw("webhook_authorized.json"), content_type="application/json"
    )

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


@pytest.mark.parametrize("value", ["guess", WEBHOOK_SECRET.upper(), WEBHOOK_SECRET + "0"])
def test_a_wrong_secret_gets_403_and_stores_nothing(client, account, value):
    with_secret(account)

    response = client.post(
        url_for(account, secret=value),
        data=raw("webhook_authorized.json"),
        content_type="application/json",
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_the_secret_may_come_in_the_header_instead(client, account):
    with_secret(account)

    response = client.post(
        url_for(account),
        data=raw("webhook_authorized.json"),
        content_type="application/json",
        headers={"X-Cuidar-Webhook-Secret": WEBHOOK_SECRET},
    )

    assert response.status_code == 200


def test_a_note_of_another_company_is_refused(client, account):
    response = client.post(
        url_for(account), data=raw("webhook_other_company.json"), content_type="application/json"
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_an_authentic_webhook_is_stored_once_and_a_replay_adds_nothing(client, account):
    with_secret(account)

    for _ in range(2):
        response = client.post(
            url_for(account, secret=WEBHOOK_SECRET),
            data=raw("webhook_authorized.json"),
            content_type="application/json",
        )
        assert response.status_code == 200

    stored = InboundWebhook.objects.get()
    assert stored.dedupe_key.endswith(":6a4a1ffc-2a3b-4b5e-9f0e-2f0a0e1f0c01:Autorizada")
    assert "secret" not in json.dumps(stored.headers)  # the query secret is not kept
    _webhook, item = webhook_item(stored.pk, 0)  # what processing hands to billing
    assert (item.reference, item.status, item.number) == ("pay-123", "authorized", "233")


def test_a_denied_note_says_why(account):
    (item,) = enotas(account).parse_webhook(webhook(raw("webhook_denied.json"))).items

    assert item == InvoiceUpdate(
        reference="pay-123",
        status="error",
        errors=["Código do serviço municipal 040800101 não permitido para o prestador."],
    )


def test_a_form_encoded_webhook_reads_the_same(account):
    fields = {k: v for k, v in recorded("webhook_authorized.json").items() if v is not None}
    body = urlencode(fields).encode()

    event = enotas(account).parse_webhook(webhook(body, "application/x-www-form-urlencoded"))

    (item,) = event.items
    assert (item.reference, item.status, item.pdf_url) == (
        "pay-123",
        "authorized",
        fields["nfeLinkPdf"],
    )


def test_a_note_issued_outside_cuidar_is_kept_but_updates_nothing(account):
    event = enotas(account).parse_webhook(webhook(raw("webhook_panel_note.json")))

    assert event.items == []
    assert event.dedupe_key == "c1d2e3f4-0000-4000-8000-000000000002:Autorizada"


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1, 2]", b'{"nfeId": "x"}'])
def test_a_body_without_status_or_id_is_malformed(account, body):
    with pytest.raises(WebhookMalformed):
        enotas(account).parse_webhook(webhook(body))
