"""eNotas Gateway as a ``fiscal`` provider (NFS-e, API v1).

Wire format from eNotasGW/php-client (``src/nfeApi.php``, ``src/proxy/proxyBase.php``,
``samples/emissao.php``, ``samples/WebHook/webHook.php``), eNotas' guides ("Fluxo geral da
emissão", "Fluxo de emissão do eNotas Gateway") and ``PROVIDERS.md`` §12:

- ``https://api.enotasgw.com.br/v1``, header ``Authorization: Basic <api key>`` (the raw key,
  not base64 of user:password).
- issue: ``POST /empresas/{empresaId}/nfes`` ``{"tipo": "NFS-e", "idExterno",
  "ambienteEmissao": "Homologacao" | "Producao", "cliente": {tipoPessoa, nome, cpfCnpj,
  email, telefone}, "servico": {descricao, itemListaServicoLC116, codigoServicoMunicipio,
  aliquotaIss, issRetidoFonte}, "valorTotal"}`` → ``{"nfeId"}``; processed asynchronously.
  eNotas refuses a second note with the same ``idExterno`` (even in another environment),
  and a refused note (``Negada``) is sent again by posting it under the same ``idExterno``.
  Issuing looks the reference up first, so a repeated issue answers the note already there.
- read: ``GET /empresas/{e}/nfes/porIdExterno/{idExterno}`` → ``status`` (``Autorizada``,
  ``Negada``, ``Cancelada``, ``CancelamentoNegado``, and in-between statuses such as
  ``AguardandoAutorizacao``/``SolicitandoCancelamento``), ``motivoStatus``, ``numero``,
  ``codigoVerificacao``, ``linkDownloadPDF``, ``linkDownloadXML``.
- cancel: ``DELETE /empresas/{e}/nfes/porIdExterno/{idExterno}`` (no body: API v1 takes no
  reason; it is still checked, as for every fiscal provider) → asynchronous.
- errors: ``[{"codigo", "mensagem"}]``.
- webhooks: eNotas posts ``{empresaId, nfeId, nfeIdExterno, nfeStatus, nfeMotivoStatus,
  nfeNumero, nfeCodigoVerificacao, nfeLinkPdf, nfeLinkXml, …}`` (JSON, or form data) when a
  note reaches a final status. eNotas documents no signature or secret for them: the
  account's unguessable URL token (checked by the endpoint) authenticates, plus, when the
  account has a ``webhook_secret``, that secret in the ``secret`` query parameter of the URL
  registered at eNotas (or in a header, for a proxy that adds one). A note of another
  company (``empresaId``) is refused.
- health: ``GET /empresas/{e}`` (the company's registration; no side effects).

Amounts: ``valorTotal`` with two decimals; ``aliquotaIss`` as a percentage.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, quote

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import (
    FiscalProvider,
    HealthResult,
    InvoiceRequest,
    InvoiceUpdate,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    WebhookEvent,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from ..choices import ProviderKind
from ..http import response_json
from . import (
    check_justification,
    customer_address,
    digits,
    error_messages,
    flag,
    iss_rate,
    merge,
    money,
    national_phone,
    provider_extra,
)

logger = logging.getLogger(__name__)

NAME = "enotas"
BASE_URL = "https://api.enotasgw.com.br/v1"
ENVIRONMENTS = {"homologacao": "Homologacao", "producao": "Producao"}
SECRET_QUERY = "secret"  # noqa: S105 - a query parameter name, not a secret
DEFAULT_WEBHOOK_HEADER = "x-cuidar-webhook-secret"

#: The customer's neutral address (``extra["address"]``) → eNotas' ``cliente.endereco``.
ADDRESS = {
    "street": "logradouro",
    "number": "numero",
    "complement": "complemento",
    "district": "bairro",
    "city": "cidade",
    "state": "uf",
    "postal_code": "cep",
}
#: eNotas' final statuses → ours; every other status is a step in between (``processing``).
#: ``CancelamentoNegado``: the city refused to cancel, the note stands (authorised).
STATUSES = {
    "autorizada": "authorized",
    "negada": "error",
    "cancelada": "cancelled",
    "cancelamentonegado": "authorized",
}


@registry.register
class ENotas(FiscalProvider):
    kind = ProviderKind.FISCAL
    name = NAME
    label = _("eNotas Gateway (NFS-e)")
    credentials_schema = {
        "api_key": _("API key of the eNotas Gateway account."),
        "webhook_secret": _(
            "Optional secret required in the webhook address registered at eNotas "
            "(…/?secret=<value>)."
        ),
    }
    settings_schema = {
        "environment": _("homologacao (tests) or producao."),
        "empresa_id": _("Company ID of the clinic at eNotas (empresaId)."),
        "item_lista_servico": _("Default LC 116 service list item (itemListaServicoLC116)."),
        "codigo_tributario_municipio": _(
            "Default municipal service code (codigoServicoMunicipio)."
        ),
        "aliquota": _("Default ISS rate in percent, e.g. 2 or 2.5."),
        "iss_retido": _("true when the customer withholds the ISS."),
        "webhook_header": _(
            "Header that may carry the webhook secret instead of the address "
            "(default x-cuidar-webhook-secret)."
        ),
    }

    # --- Outbound -------------------------------------------------------------------------
    def _missing(self) -> list[str]:
        names = [] if self.credentials.get("api_key") else ["api_key"]
        return names + ([] if self.settings.get("empresa_id") else ["empresa_id"])

    def _require(self, operation: str) -> None:
        missing = self._missing()
        if missing:
            raise PermanentProviderError(
                f"{NAME}.{operation}: account not configured (missing {', '.join(missing)})",
                provider=NAME,
            )

    def _url(self, path: str = "") -> str:
        company = quote(str(self.settings["empresa_id"]).strip(), safe="")
        return f"{BASE_URL}/empresas/{company}{path}"

    def _note_url(self, reference: str) -> str:
        return self._url(f"/nfes/porIdExterno/{quote(reference, safe='')}")

    def _headers(self) -> dict[str, str]:
        # The raw key after "Basic" (eNotas' own clients do so), not base64(user:password).
        return {"Authorization": f"Basic {self.credentials['api_key']}"}

    def _find(self, reference: str, *, operation: str = "find") -> dict | None:
        try:
            response = self.request(
                "GET", self._note_url(reference), operation=operation, headers=self._headers()
            )
        except PermanentProviderError as exc:
            if exc.http_status == 404:
                return None
            raise _refusal(exc, operation) from exc
        return _object(response_json(response), operation)

    def issue(self, invoice: InvoiceRequest) -> InvoiceUpdate:
        """Look the reference up, then send the note unless one stands under it already (a
        refused one is sent again, which is how eNotas re-transmits a corrected note)."""
        self._require("issue")
        reference = invoice.reference
        existing = self._find(reference)
        if existing is not None and _update(reference, existing).status != "error":
            return _update(reference, existing)
        try:
            self.request(
                "POST",
                self._url("/nfes"),
                operation="issue",
                json=merge(self._body(invoice), provider_extra(invoice.extra)),
                headers=self._headers(),
                # Not repeated inline: the next attempt looks the reference up first.
                retry=False,
            )
        except PermanentProviderError as exc:
            if exc.http_status in (401, 403, 404):
                raise _refusal(exc, "issue") from exc
            # Refused: a concurrent issue of the same reference may have won.
            existing = self._find(reference)
            if existing is not None and _update(reference, existing).status != "error":
                return _update(reference, existing)
            return InvoiceUpdate(
                reference=reference, status="error", errors=_messages(exc.detail) or [str(exc)]
            )
        # Accepted and queued: the city's answer comes by webhook or the next read.
        return InvoiceUpdate(reference=reference, status="processing")

    def get_invoice(self, reference: str) -> InvoiceUpdate:
        self._require("get_invoice")
        found = self._find(reference, operation="get_invoice")
        if found is None:
            raise PermanentProviderError(
                f"{NAME}.get_invoice: no invoice with idExterno {reference!r}",
                provider=NAME,
                http_status=404,
            )
        return _update(reference, found)

    def cancel(self, reference: str, justification: str) -> InvoiceUpdate:
        """Ask for the cancellation (asynchronous at eNotas): the answer is the note as it
        then stands, usually ``processing`` until the city confirms. A refusal answers the
        note as it stands, with the reasons."""
        check_justification(justification, provider=NAME)
        self._require("cancel")
        try:
            self.request(
                "DELETE",
                self._note_url(reference),
                operation="cancel",
                headers=self._headers(),
                retry=False,
            )
        except PermanentProviderError as exc:
            if exc.http_status in (401, 403, 404):
                raise _refusal(exc, "cancel") from exc
            current = self.get_invoice(reference)
            if current.status == "cancelled":
                return current
            return replace(current, errors=_messages(exc.detail) or [str(exc)])
        try:
            return self.get_invoice(reference)
        except ProviderError:
            return InvoiceUpdate(reference=reference, status="processing")

    def health(self) -> HealthResult:
        """Reads the company's registration: proves the key and the company id together."""
        missing = self._missing()
        if missing:
            return HealthResult(
                ok=False,
                detail=gettext("Not configured: %(names)s.") % {"names": ", ".join(missing)},
            )
        try:
            response = self.request(
                "GET", self._url(), operation="health", headers=self._headers(), retry=False
            )
            data = response_json(response)
        except ProviderError as exc:
            if isinstance(exc, PermanentProviderError):
                exc = _refusal(exc, "health")
            return HealthResult(
                ok=False, detail=gettext("Provider call failed: %(error)s") % {"error": exc}
            )
        data = data if isinstance(data, dict) else {}
        return HealthResult(
            ok=True,
            detail=gettext("Company %(name)s (CNPJ %(cnpj)s) found at eNotas.")
            % {
                "name": data.get("razaoSocial") or data.get("nomeFantasia") or "?",
                "cnpj": data.get("cnpj") or "?",
            },
        )

    def _body(self, invoice: InvoiceRequest) -> dict:
        settings = self.settings
        environment = str(settings.get("environment") or "homologacao").strip().lower()
        service: dict[str, Any] = {
            "descricao": invoice.description,
            "issRetidoFonte": flag(settings.get("iss_retido")),
        }
        item = invoice.service_code or str(settings.get("item_lista_servico") or "")
        if item:
            service["itemListaServicoLC116"] = item
        municipal_code = invoice.municipal_tax_code or str(
            settings.get("codigo_tributario_municipio") or ""
        )
        if municipal_code:
            service["codigoServicoMunicipio"] = municipal_code
        rate = iss_rate(invoice.iss_rate, settings.get("aliquota"), provider=NAME)
        if rate is not None:
            service["aliquotaIss"] = rate
        customer = invoice.customer
        document = digits(customer.cpf_cnpj)
        client: dict[str, Any] = {"nome": customer.name}
        if document:
            client["cpfCnpj"] = document
            client["tipoPessoa"] = "J" if len(document) == 14 else "F"
        if customer.email:
            client["email"] = customer.email
        if customer.phone:
            client["telefone"] = national_phone(customer.phone)
        address = customer_address(invoice.extra)
        endereco = {field: address[key] for key, field in ADDRESS.items() if key in address}
        if endereco:
            client["endereco"] = endereco
        body: dict[str, Any] = {
            "tipo": "NFS-e",
            "idExterno": invoice.reference,
            "ambienteEmissao": ENVIRONMENTS.get(environment, "Homologacao"),
            "cliente": client,
            "servico": service,
            "valorTotal": money(invoice.amount),
        }
        if invoice.issued_on:
            body["dataCompetencia"] = invoice.issued_on.isoformat()
        return body

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """The URL token (checked by the endpoint) and, when configured, the shared secret
        (``?secret=`` or the header), in constant time; then the note must be of the
        clinic's company."""
        secret = str(self.credentials.get("webhook_secret") or "")
        if secret:
            header = str(self.settings.get("webhook_header") or DEFAULT_WEBHOOK_HEADER).strip()
            provided = request.query.get(SECRET_QUERY, "") or request.header(header)
            if not provided:
                raise WebhookUnauthorized("missing webhook secret", status=401)
            if not hmac.compare_digest(provided.strip().encode(), secret.encode()):
                raise WebhookUnauthorized("wrong webhook secret", status=403)
        try:
            data = _payload(request)
        except WebhookMalformed:
            return  # authentic but unreadable: stored and marked failed
        ours = str(self.settings.get("empresa_id") or "").strip().lower()
        theirs = str(data.get("empresaId") or "").strip().lower()
        if ours and theirs and theirs != ours:
            raise WebhookUnauthorized("webhook of another eNotas company", status=403)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """One note per call. A note without ``nfeIdExterno`` was not issued by Cuidar (the
        eNotas panel): stored, nothing to update. Dedupe key: the note's id and status."""
        data = _payload(request)
        status = str(data.get("nfeStatus") or "")
        note_id = str(data.get("nfeId") or "")
        reference = str(data.get("nfeIdExterno") or "")
        if not status or not (note_id or reference):
            raise WebhookMalformed("missing nfeStatus or nfeId")
        note = {
            "status": status,
            "motivoStatus": data.get("nfeMotivoStatus"),
            "numero": data.get("nfeNumero"),
            "codigoVerificacao": data.get("nfeCodigoVerificacao"),
            "linkDownloadPDF": data.get("nfeLinkPdf") or data.get("nfeLinkDownloadPDF"),
            "linkDownloadXML": data.get("nfeLinkXml") or data.get("nfeLinkDownloadXML"),
        }
        items = [_update(reference, note)] if reference else []
        return WebhookEvent(dedupe_key=f"{note_id or reference}:{status}", items=items)


# --- Helpers ---------------------------------------------------------------------------------
def _update(reference: str, data: dict) -> InvoiceUpdate:
    raw_status = str(data.get("status") or "")
    status = STATUSES.get(raw_status.lower(), "processing")
    reason = str(data.get("motivoStatus") or "").strip()
    refused = status == "error" or raw_status.lower() == "cancelamentonegado"
    return InvoiceUpdate(
        reference=reference,
        status=status,
        number=str(data.get("numero") or ""),
        verification_code=str(data.get("codigoVerificacao") or ""),
        pdf_url=str(data.get("linkDownloadPDF") or ""),
        xml_url=str(data.get("linkDownloadXML") or ""),
        errors=[reason] if refused and reason else [],
    )


def _messages(detail: Any) -> list[str]:
    """eNotas' ``[{"codigo", "mensagem"}]`` (or a single object, or text) as sentences."""
    if isinstance(detail, dict):
        detail = [detail]
    if isinstance(detail, list):
        return error_messages(detail)
    return [str(detail)[:300]] if detail else []


def _refusal(exc: PermanentProviderError, operation: str) -> PermanentProviderError:
    messages = _messages(exc.detail)
    text = f"{NAME}.{operation}: HTTP {exc.http_status}"
    if messages:
        text += ": " + "; ".join(messages)
    elif exc.http_status in (401, 403):
        text += ": API key refused"
    return PermanentProviderError(
        text, provider=NAME, http_status=exc.http_status, detail=exc.detail
    )


def _object(data: Any, operation: str) -> dict:
    if not isinstance(data, dict):
        raise TransientProviderError(
            f"{NAME}.{operation}: answer is not a JSON object", provider=NAME
        )
    return data


def _payload(request: WebhookRequest) -> dict:
    """The webhook's fields: a JSON object, or form data (eNotas' own sample reads either,
    by content type)."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookMalformed("body is not UTF-8") from None
    if "form" in request.content_type or not text.lstrip().startswith(("{", "[")):
        data = dict(parse_qsl(text, keep_blank_values=True))
        if data:
            return data
    try:
        data = json.loads(text)
    except ValueError:
        raise WebhookMalformed("body is neither JSON nor form data") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data
