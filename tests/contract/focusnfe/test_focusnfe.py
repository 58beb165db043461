"""Focus NFe: the wire format of issuing, reading and cancelling NFS-e, the health probe and
the webhooks, replayed offline from recorded requests and answers (``responses`` stubs the
network)."""

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import requests
import responses
import time_machine
from django.utils import translation
from responses import matchers

import integrations.fiscal.focusnfe  # noqa: F401  (registers the adapter)
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

BASE = "https://homologacao.focusnfe.com.br"
ISSUE_URL = f"{BASE}/v2/nfse"
NOTE_URL = f"{BASE}/v2/nfse/pay-123"
TOKEN = "focus-token-7f3a9c2e41"
WEBHOOK_SECRET = "focus-hook-secret-5b8d"
BASIC = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()
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
        provider="focusnfe",
        settings={
            "environment": "homologacao",
            "cnpj": "18.765.499/0001-99",
            "inscricao_municipal": "12345",
            "codigo_municipio": "3550308",
            "item_lista_servico": "0408",
            "codigo_tributario_municipio": "040800101",
            "aliquota": "2",
            "optante_simples_nacional": True,
            "webhook_header": "X-Cuidar-Focus",
        },
        credentials={"token": TOKEN, "webhook_secret": WEBHOOK_SECRET},
    )


def focus(account):
    return registry.get("fiscal", "focusnfe")(account)


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


def sent_body(index: int = 0) -> dict:
    return json.loads(responses.calls[index].request.body)


# --- Issuing --------------------------------------------------------------------------------
@responses.activate
def test_it_issues_under_our_reference_with_basic_auth_and_the_municipal_layout(account):
    responses.post(
        ISSUE_URL,
        json=recorded("issue_response.json"),
        match=[
            matchers.query_param_matcher({"ref": "pay-123"}),
            matchers.header_matcher({"Authorization": BASIC}),
            matchers.json_params_matcher(recorded("issue_request.json")),
        ],
    )

    result = focus(account).issue(invoice())

    assert result == InvoiceUpdate(reference="pay-123", status="processing")


@responses.activate
def test_the_amount_has_two_decimals_and_the_rate_is_a_percentage_on_the_wire(account):
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))

    focus(account).issue(invoice(amount=Decimal("150.005"), iss_rate=Decimal("0.025")))

    body = responses.calls[0].request.body.decode()
    assert '"valor_servicos": 150.01' in body
    assert '"aliquota": 2.5' in body  # Focus reads 2.5 as 2.5 %, so 0.025 is converted


@responses.activate
def test_the_invoice_codes_and_rate_override_the_account_defaults(account):
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))

    focus(account).issue(
        invoice(service_code="0401", municipal_tax_code="040100199", iss_rate=Decimal("5"))
    )

    servico = sent_body()["servico"]
    assert servico["item_lista_servico"] == "0401"
    assert servico["codigo_tributario_municipio"] == "040100199"
    assert servico["aliquota"] == 5.0


ADDRESS = {
    "street": "Rua Augusta",
    "number": "1500",
    "complement": "ap 12",
    "district": "Consolação",
    "city": "São Paulo",
    "city_code": "3550308",
    "state": "sp",
    "postal_code": "01304-001",
}


@responses.activate
def test_the_customers_address_goes_in_focus_names_and_other_extras_as_they_are(account):
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))

    focus(account).issue(invoice(extra={"address": ADDRESS, "natureza_operacao": "3"}))

    body = sent_body()
    assert body["tomador"]["endereco"] == {
        "logradouro": "Rua Augusta",
        "numero": "1500",
        "complemento": "ap 12",
        "bairro": "Consolação",
        "codigo_municipio": "3550308",
        "uf": "SP",
        "cep": "01304001",
    }
    assert body["natureza_operacao"] == "3"
    assert "address" not in body


@responses.activate
def test_a_zero_rate_means_unset_and_the_account_default_applies(account):
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))

    focus(account).issue(invoice(iss_rate=Decimal("0")))

    assert sent_body()["servico"]["aliquota"] == 2.0


@responses.activate
@time_machine.travel(datetime(2026, 5, 4, 13, 0, tzinfo=UTC), tick=False)
def test_an_account_on_nfse_nacional_sends_the_dps_layout_to_nfsen(account):
    account.settings.update(
        {"nacional": True, "item_lista_servico": "040801", "codigo_opcao_simples_nacional": "3"}
    )
    account.save(update_fields=["settings"])
    responses.post(
        f"{BASE}/v2/nfsen",
        json=recorded("issue_response.json"),
        match=[
            matchers.query_param_matcher({"ref": "pay-123"}),
            matchers.header_matcher({"Authorization": BASIC}),
            matchers.json_params_matcher(recorded("issue_nacional_request.json")),
        ],
    )
    responses.get(f"{BASE}/v2/nfsen/pay-123", json=recorded("invoice_nacional_authorized.json"))

    issued = focus(account).issue(invoice())
    read = focus(account).get_invoice("pay-123")

    assert issued.status == "processing"
    assert read.status == "authorized"
    assert read.pdf_url.endswith("NFSe187654990001993550308-1245.pdf")  # the DANFSe PDF
    assert read.xml_url.startswith(f"{BASE}/arquivos/")


@responses.activate
def test_a_refused_request_becomes_an_error_update_with_focus_message(account):
    responses.post(ISSUE_URL, status=400, json=recorded("error_requisicao_invalida.json"))

    result = focus(account).issue(invoice())

    assert result == InvoiceUpdate(
        reference="pay-123",
        status="error",
        errors=['Parâmetro "tomador.endereco.cep" não informado'],
    )


@pytest.mark.parametrize("fixture", ["error_nfe_autorizada.json", "error_em_processamento.json"])
@responses.activate
def test_issuing_the_same_reference_twice_returns_the_existing_invoice(account, fixture):
    responses.post(ISSUE_URL, json=recorded("issue_response.json"))
    responses.post(ISSUE_URL, status=422, json=recorded(fixture))
    responses.get(NOTE_URL, json=recorded("invoice_authorized.json"))

    first = focus(account).issue(invoice())
    again = focus(account).issue(invoice())

    assert first.status == "processing"
    assert again.status == "authorized"
    assert again.number == "233"
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert [c.response.status_code for c in posts] == [200, 422]  # no second note


@pytest.mark.parametrize(
    ("status", "fixture"),
    [(400, "error_empresa_nao_habilitada.json"), (403, "error_permissao_negada.json")],
)
@responses.activate
def test_account_problems_are_permanent_errors_with_focus_message(account, status, fixture):
    responses.post(ISSUE_URL, status=status, json=recorded(fixture))

    with pytest.raises(PermanentProviderError) as caught:
        focus(account).issue(invoice())

    assert recorded(fixture)["mensagem"] in str(caught.value)
    assert recorded(fixture)["codigo"] in str(caught.value)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 503])
@responses.activate
def test_429_and_5xx_are_transient_after_the_retries(account, status):
    responses.post(
        ISSUE_URL, status=status, json={"codigo": "erro", "mensagem": "tente mais tarde"}
    )

    with pytest.raises(TransientProviderError):
        focus(account).issue(invoice())

    # A repeated POST of the same ref cannot make a second note, so it is retried inline.
    assert len(responses.calls) == 3


@responses.activate
def test_a_timeout_then_a_retry_finds_the_note_the_first_post_created(account):
    responses.post(ISSUE_URL, body=requests.ReadTimeout("no answer"))
    responses.post(ISSUE_URL, status=422, json=recorded("error_em_processamento.json"))
    responses.get(NOTE_URL, json=recorded("invoice_processing.json"))

    result = focus(account).issue(invoice())

    assert result.status == "processing"


def test_an_account_without_company_data_is_refused_before_any_call(clinic_a):
    account = ProviderAccount(
        clinic=clinic_a, kind="fiscal", provider="focusnfe", credentials={"token": TOKEN}
    )

    with pytest.raises(PermanentProviderError) as caught:
        focus(account).issue(invoice())

    assert "cnpj" in str(caught.value)
    assert "inscricao_municipal" in str(caught.value)


# --- Reading --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("invoice_processing.json", "processing"),
        ("invoice_authorized.json", "authorized"),
        ("invoice_error.json", "error"),
        ("invoice_cancelled.json", "cancelled"),
        ("invoice_replaced.json", "cancelled"),
    ],
)
@responses.activate
def test_each_focus_status_is_mapped(account, fixture, status):
    responses.get(
        NOTE_URL, json=recorded(fixture), match=[matchers.header_matcher({"Authorization": BASIC})]
    )

    assert focus(account).get_invoice("pay-123").status == status


@responses.activate
def test_an_authorised_invoice_has_its_number_code_and_links(account):
    responses.get(NOTE_URL, json=recorded("invoice_authorized.json"))

    result = focus(account).get_invoice("pay-123")

    assert result == InvoiceUpdate(
        reference="pay-123",
        status="authorized",
        number="233",
        verification_code="DU1M-M2Y",
        pdf_url=recorded("invoice_authorized.json")["url"],
        xml_url=BASE
        + "/arquivos/18765499000199_12345/202605/XMLsNFSe/"
        + "187654990001993550308-004949940-233-DU1MM2Y-nfse.xml",
    )


@responses.activate
def test_an_authorisation_error_reads_as_plain_messages_with_the_correction(account):
    responses.get(NOTE_URL, json=recorded("invoice_error.json"))

    result = focus(account).get_invoice("pay-123")

    assert result.errors == [
        "Regime Especial de Tributação ausente/inválido. (E145)",
        "Código de tributação do município inexistente. "
        "Correção: Informe o código conforme a tabela da prefeitura. (E160)",
    ]


@responses.activate
def test_an_unknown_reference_is_a_permanent_error(account):
    responses.get(NOTE_URL, status=404, json=recorded("error_nao_encontrado.json"))

    with pytest.raises(PermanentProviderError) as caught:
        focus(account).get_invoice("pay-123")

    assert caught.value.http_status == 404
    assert "Nota fiscal não encontrada" in str(caught.value)


@responses.activate
def test_the_production_environment_uses_the_production_host(account):
    account.settings["environment"] = "producao"
    account.save(update_fields=["settings"])
    responses.get(
        "https://api.focusnfe.com.br/v2/nfse/pay-123", json=recorded("invoice_authorized.json")
    )

    result = focus(account).get_invoice("pay-123")

    assert result.xml_url.startswith("https://api.focusnfe.com.br/arquivos/")


# --- Cancelling -----------------------------------------------------------------------------
@responses.activate
def test_it_cancels_with_the_justification_in_the_body(account):
    responses.delete(
        NOTE_URL,
        json=recorded("cancel_response.json"),
        match=[
            matchers.json_params_matcher({"justificativa": REASON}),
            matchers.header_matcher({"Authorization": BASIC}),
        ],
    )

    result = focus(account).cancel("pay-123", f"  {REASON} ")

    assert result == InvoiceUpdate(reference="pay-123", status="cancelled")


@pytest.mark.parametrize("reason", ["", "Desistência", "x" * 256])
@responses.activate
def test_a_justification_outside_15_to_255_characters_is_refused_before_any_call(account, reason):
    with pytest.raises(PermanentProviderError) as caught:
        focus(account).cancel("pay-123", reason)

    assert "15" in str(caught.value)
    assert "255" in str(caught.value)
    assert len(responses.calls) == 0
    assert ExternalCall.objects.count() == 0


@responses.activate
def test_a_cancellation_the_city_refuses_answers_the_invoice_with_the_reasons(account):
    responses.delete(NOTE_URL, json=recorded("cancel_refused_response.json"))
    responses.get(NOTE_URL, json=recorded("invoice_authorized.json"))

    result = focus(account).cancel("pay-123", REASON)

    assert result.status == "authorized"
    assert result.number == "233"
    assert result.errors == [
        "nota que você está tentando cancelar está fora do prazo permitido para cancelamento (E523)"
    ]


@responses.activate
def test_cancelling_an_invoice_already_cancelled_answers_its_state(account):
    responses.delete(NOTE_URL, status=400, json=recorded("error_nfe_cancelada.json"))
    responses.get(NOTE_URL, json=recorded("invoice_cancelled.json"))

    result = focus(account).cancel("pay-123", REASON)

    assert result.status == "cancelled"
    assert result.errors == []


@responses.activate
def test_cancelling_an_invoice_not_authorised_answers_it_with_the_reason(account):
    responses.delete(NOTE_URL, status=400, json=recorded("error_nfe_nao_autorizada.json"))
    responses.get(NOTE_URL, json=recorded("invoice_processing.json"))

    result = focus(account).cancel("pay-123", REASON)

    assert result.status == "processing"
    assert result.errors == ["Nota fiscal não autorizada não pode ser cancelada"]


# --- Health ---------------------------------------------------------------------------------
@responses.activate
def test_health_lists_the_hooks_and_says_whether_cuidars_is_registered(account, settings):
    settings.CUIDAR_PUBLIC_URL = "https://cuidar.example"
    hooks = recorded("hooks_response.json")
    hooks[0]["url"] = hooks[0]["url"].replace("TOKEN", str(account.webhook_token))
    responses.get(
        f"{BASE}/v2/hooks", json=hooks, match=[matchers.header_matcher({"Authorization": BASIC})]
    )

    with translation.override("en"):
        result = focus(account).health()

    assert result.ok
    assert "registered" in result.detail
    assert "not registered" not in result.detail


@responses.activate
def test_health_is_ok_but_says_so_when_no_hook_points_to_cuidar(account):
    responses.get(f"{BASE}/v2/hooks", json=[])

    with translation.override("en"):
        result = focus(account).health()

    assert result.ok
    assert "not registered" in result.detail


@responses.activate
def test_health_is_not_ok_with_a_refused_token(account):
    responses.get(f"{BASE}/v2/hooks", status=403, json=recorded("error_permissao_negada.json"))

    result = focus(account).health()

    assert not result.ok
    assert "permissao_negada" in result.detail


# --- Webhooks -------------------------------------------------------------------------------
def url_for(account) -> str:
    return f"/webhooks/focusnfe/{account.webhook_token}/"


def post(client, account, body: bytes, **headers):
    return client.post(
        url_for(account), data=body, content_type="application/json", headers=headers
    )


def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://cuidar.example/webhooks/focusnfe/token/",
        subpath="",
        headers={},
        query={},
        body=body,
        content_type="application/json",
    )


def test_a_webhook_without_the_header_gets_401_and_stores_nothing(client, account):
    response = post(client, account, raw("webhook_authorized.json"))

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


@pytest.mark.parametrize("value", ["guess", WEBHOOK_SECRET + "x", WEBHOOK_SECRET[:-1]])
def test_a_webhook_with_a_wrong_header_gets_403_and_stores_nothing(client, account, value):
    response = post(client, account, raw("webhook_authorized.json"), **{"X-Cuidar-Focus": value})

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_the_secret_in_another_header_does_not_count(client, account):
    response = post(client, account, raw("webhook_authorized.json"), Authorization=WEBHOOK_SECRET)

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


def test_an_account_without_webhook_secret_refuses_every_webhook(client, account):
    account.credentials = {"token": TOKEN}
    account.save(update_fields=["credentials"])

    response = post(client, account, raw("webhook_authorized.json"), **{"X-Cuidar-Focus": "x"})

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_a_note_of_another_company_is_refused(client, account):
    response = post(
        client, account, raw("webhook_other_company.json"), **{"X-Cuidar-Focus": WEBHOOK_SECRET}
    )

    assert response.status_code == 403
    assert InboundWebhook.objects.count() == 0


def test_an_authentic_webhook_is_stored_once_and_a_replay_adds_nothing(client, account):
    body = raw("webhook_authorized.json")

    first = post(client, account, body, **{"X-Cuidar-Focus": WEBHOOK_SECRET})
    replay = post(client, account, body, **{"X-Cuidar-Focus": WEBHOOK_SECRET})

    assert (first.status_code, replay.status_code) == (200, 200)
    stored = InboundWebhook.objects.get()
    assert stored.dedupe_key == f"focusnfe:{account.pk}:pay-123:autorizado"
    assert "x-cuidar-focus" not in stored.headers  # the secret is not kept
    _webhook, item = webhook_item(stored.pk, 0)  # what processing hands to billing
    assert (item.reference, item.status, item.number) == ("pay-123", "authorized", "233")


def test_a_webhook_says_the_invoice_and_its_state(account):
    event = focus(account).parse_webhook(webhook(raw("webhook_error.json")))

    (item,) = event.items
    assert item.reference == "pay-123"
    assert item.status == "error"
    assert item.errors[0] == "Regime Especial de Tributação ausente/inválido. (E145)"
    assert event.dedupe_key.startswith("pay-123:erro_autorizacao:")


def test_a_corrected_note_that_fails_differently_is_not_taken_for_a_replay(account):
    body = recorded("webhook_error.json")
    other = dict(body, erros=[{"codigo": "E999", "mensagem": "Outro erro.", "correcao": None}])

    first = focus(account).parse_webhook(webhook(json.dumps(body).encode()))
    second = focus(account).parse_webhook(webhook(json.dumps(other).encode()))

    assert first.dedupe_key != second.dedupe_key


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"status": "autorizado"}'])
def test_a_body_without_ref_or_status_is_malformed(account, body):
    with pytest.raises(WebhookMalformed):
        focus(account).parse_webhook(webhook(body))
