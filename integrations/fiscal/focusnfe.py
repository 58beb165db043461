"""Focus NFe as a ``fiscal`` provider: municipal NFS-e and NFS-e Nacional.

Wire format from FocusNFe/api-doc (``source/includes/_nfse.md``, ``_nfsen.md``,
``_webhooks.md``) and ``PROVIDERS.md`` §10:

- base URL ``https://homologacao.focusnfe.com.br`` or ``https://api.focusnfe.com.br``; HTTP
  Basic with the token as user and an empty password.
- issue: ``POST /v2/nfse?ref=REF`` with the municipal layout (``prestador``, ``tomador``,
  ``servico``), or ``POST /v2/nfsen?ref=REF`` with the flat NFS-e Nacional (DPS) layout when
  the account says ``nacional``. Asynchronous: ``{"ref", "status":
  "processando_autorizacao"}``. The ``ref`` is ours and Focus keys the note on it: sending it
  again answers 422 ``em_processamento``/``nfe_autorizada`` (documented), and the adapter then
  reads the note instead. After ``erro_autorizacao`` the same ref may be sent again
  (documented): that is how a corrected invoice is re-sent.
- read: ``GET /v2/nfse/REF`` (``/v2/nfsen/REF``) → ``status`` ``processando_autorizacao |
  autorizado | erro_autorizacao | cancelado | substituido``; ``numero``,
  ``codigo_verificacao``, ``url``, ``url_danfse``, ``caminho_xml_nota_fiscal`` (a path on the
  API host); ``erros: [{"codigo", "mensagem", "correcao"}]``.
- cancel: ``DELETE /v2/nfse/REF`` with ``{"justificativa"}`` (15–255 characters, checked here
  before calling). Synchronous: ``{"status": "cancelado"}`` or ``{"status":
  "erro_cancelamento", "erros": […]}``.
- errors: ``{"codigo", "mensagem"}``; 100 requests/min per token (429), retried later.
- webhooks: the note's JSON, POSTed to the hook registered with ``POST /v2/hooks``. Focus signs
  nothing; it sends the header chosen at registration (``authorization_header``, default
  ``Authorization``) with the value chosen (``authorization``), verified here.
- health: ``GET /v2/hooks`` (authenticated, no side effects); it also says whether Cuidar's
  webhook is registered.

Amounts: ``valor_servicos`` with two decimals; ``aliquota`` as a percentage (the docs send
``"aliquota": 3`` and ``"2.92"``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from django.conf import settings as django_settings
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import registry
from ..base import (
    Customer,
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
    now_iso,
    provider_extra,
)

logger = logging.getLogger(__name__)

NAME = "focusnfe"
BASE_URLS = {
    "homologacao": "https://homologacao.focusnfe.com.br",
    "producao": "https://api.focusnfe.com.br",
}
DEFAULT_WEBHOOK_HEADER = "Authorization"

#: Focus's statuses → ours. ``substituido``: replaced by another note, so no longer valid.
STATUSES = {
    "processando_autorizacao": "processing",
    "autorizado": "authorized",
    "erro_autorizacao": "error",
    "cancelado": "cancelled",
    "substituido": "cancelled",
}
#: The customer's neutral address (``extra["address"]``) → Focus's fields, in each layout.
MUNICIPAL_ADDRESS = {
    "street": "logradouro",
    "number": "numero",
    "complement": "complemento",
    "district": "bairro",
    "city_code": "codigo_municipio",
    "state": "uf",
    "postal_code": "cep",
}
NACIONAL_ADDRESS = {
    "street": "logradouro_tomador",
    "number": "numero_tomador",
    "complement": "complemento_tomador",
    "district": "bairro_tomador",
    "city_code": "codigo_municipio_tomador",
    "postal_code": "cep_tomador",
}
#: Refusals of a POST that mean "this ref is already a note": read it instead.
ALREADY_ISSUED = {"nfe_autorizada", "em_processamento", "nfe_cancelada", "already_processed"}
#: Refusals that are about the account, not the invoice: every invoice would fail alike.
ACCOUNT_PROBLEMS = {"empresa_nao_habilitada", "certificado_vencido", "permissao_negada"}


@registry.register
class FocusNfe(FiscalProvider):
    kind = ProviderKind.FISCAL
    name = NAME
    label = _("Focus NFe (NFS-e)")
    credentials_schema = {
        "token": _("Focus NFe API token of the company (homologation or production)."),
        "webhook_secret": _(
            "Value Focus NFe sends in the webhook header (the hook's 'authorization')."
        ),
    }
    settings_schema = {
        "environment": _("homologacao (tests) or producao."),
        "cnpj": _("CNPJ of the clinic (service provider)."),
        "inscricao_municipal": _("Municipal registration (inscrição municipal) of the clinic."),
        "codigo_municipio": _("IBGE code of the clinic's city (7 digits)."),
        "nacional": _("true to issue NFS-e Nacional (DPS, /v2/nfsen) instead of the city's."),
        "item_lista_servico": _(
            "Default service code: LC 116 list item, or the national tax code (6 digits) "
            "for NFS-e Nacional."
        ),
        "codigo_tributario_municipio": _("Default municipal tax code, when the city uses one."),
        "aliquota": _("Default ISS rate in percent, e.g. 2 or 2.5."),
        "iss_retido": _("true when the customer withholds the ISS."),
        "optante_simples_nacional": _("true when the clinic is in the Simples Nacional."),
        "regime_especial_tributacao": _("Special tax regime code, when the city asks for it."),
        "natureza_operacao": _("Nature of the operation (1 = taxed in the city), when asked."),
        "codigo_opcao_simples_nacional": _(
            "NFS-e Nacional: 1 not in the Simples, 2 MEI, 3 ME/EPP."
        ),
        "webhook_header": _(
            "Header the webhook secret comes in (the hook's 'authorization_header'; "
            "default Authorization)."
        ),
    }

    # --- Outbound -------------------------------------------------------------------------
    @property
    def nacional(self) -> bool:
        return flag(self.settings.get("nacional"))

    def _base_url(self) -> str:
        environment = str(self.settings.get("environment") or "homologacao").strip().lower()
        return BASE_URLS.get(environment, BASE_URLS["homologacao"])

    def _url(self, reference: str = "") -> str:
        path = "/v2/nfsen" if self.nacional else "/v2/nfse"
        return self._base_url() + path + (f"/{quote(reference, safe='')}" if reference else "")

    def _auth(self) -> tuple[str, str]:
        return (str(self.credentials.get("token") or ""), "")

    def _missing(self, *, to_issue: bool = False) -> list[str]:
        names = [] if self.credentials.get("token") else ["token"]
        if to_issue:
            required = ["cnpj", "codigo_municipio"]
            if not self.nacional:
                required.append("inscricao_municipal")
            names += [n for n in required if not self.settings.get(n)]
        return names

    def _require(self, operation: str, *, to_issue: bool = False) -> None:
        missing = self._missing(to_issue=to_issue)
        if missing:
            raise PermanentProviderError(
                f"{NAME}.{operation}: account not configured (missing {', '.join(missing)})",
                provider=NAME,
            )

    def issue(self, invoice: InvoiceRequest) -> InvoiceUpdate:
        """Send the invoice under our reference; a reference Focus already holds (in
        processing, authorised or cancelled) answers that note instead of a second one."""
        self._require("issue", to_issue=True)
        body = self._nacional_body(invoice) if self.nacional else self._municipal_body(invoice)
        try:
            response = self.request(
                "POST",
                self._url(),
                operation="issue",
                params={"ref": invoice.reference},
                json=merge(body, provider_extra(invoice.extra)),
                auth=self._auth(),
                # Safe to repeat: a retried POST of the same ref is answered 422
                # em_processamento, which reads the note below.
            )
        except PermanentProviderError as exc:
            code, messages = _focus_error(exc.detail)
            if code in ALREADY_ISSUED:
                return self.get_invoice(invoice.reference)
            if exc.http_status in (400, 422) and code not in ACCOUNT_PROBLEMS:
                return InvoiceUpdate(
                    reference=invoice.reference, status="error", errors=messages or [str(exc)]
                )
            raise _refusal(exc, "issue") from exc
        return self._update(invoice.reference, _object(response_json(response), "issue"))

    def get_invoice(self, reference: str) -> InvoiceUpdate:
        self._require("get_invoice")
        try:
            response = self.request(
                "GET", self._url(reference), operation="get_invoice", auth=self._auth()
            )
        except PermanentProviderError as exc:
            raise _refusal(exc, "get_invoice") from exc
        return self._update(reference, _object(response_json(response), "get_invoice"))

    def cancel(self, reference: str, justification: str) -> InvoiceUpdate:
        """Cancel at the city, synchronously. A refusal (``erro_cancelamento``, a note not
        authorised) answers the note as it stands, with the reasons in ``errors``."""
        justification = check_justification(justification, provider=NAME)
        self._require("cancel")
        try:
            response = self.request(
                "DELETE",
                self._url(reference),
                operation="cancel",
                json={"justificativa": justification},
                auth=self._auth(),
                # Safe to repeat: a cancelled note answers nfe_cancelada, read below.
            )
        except PermanentProviderError as exc:
            code, messages = _focus_error(exc.detail)
            if code == "nfe_cancelada":
                return self.get_invoice(reference)
            if code in ("nfe_nao_autorizada", "em_processamento"):
                current = self.get_invoice(reference)
                return replace(current, errors=messages + current.errors)
            raise _refusal(exc, "cancel") from exc
        data = _object(response_json(response), "cancel")
        if data.get("status") == "cancelado":
            return self._update(reference, data)
        messages = error_messages(data.get("erros")) or [str(data.get("status") or "?")]
        try:
            current = self.get_invoice(reference)
        except ProviderError:
            # The note stays authorised; its details come with the next read.
            return InvoiceUpdate(reference=reference, status="authorized", errors=messages)
        return replace(current, errors=messages)

    def health(self) -> HealthResult:
        """Lists the token's webhooks: proves the token, and says whether Cuidar's is one."""
        missing = self._missing()
        if missing:
            return HealthResult(
                ok=False,
                detail=gettext("Not configured: %(names)s.") % {"names": ", ".join(missing)},
            )
        try:
            response = self.request(
                "GET",
                self._base_url() + "/v2/hooks",
                operation="health",
                auth=self._auth(),
                retry=False,  # a probe: one attempt, answered at once
            )
            hooks = response_json(response)
        except ProviderError as exc:
            if isinstance(exc, PermanentProviderError):
                exc = _refusal(exc, "health")
            return HealthResult(
                ok=False, detail=gettext("Provider call failed: %(error)s") % {"error": exc}
            )
        ours = self.webhook_url()
        urls = (
            {str(h.get("url") or "") for h in hooks if isinstance(h, dict)}
            if isinstance(hooks, list)
            else set()
        )
        if ours in urls:
            return HealthResult(ok=True, detail=gettext("Token accepted; webhook registered."))
        return HealthResult(
            ok=True,
            detail=gettext(
                "Token accepted, but Cuidar's webhook is not registered at Focus NFe: "
                "invoices are only updated when polled."
            ),
        )

    def webhook_url(self) -> str:
        """The address to register at Focus (``POST /v2/hooks``, event ``nfse``)."""
        base = django_settings.CUIDAR_PUBLIC_URL.rstrip("/")
        return f"{base}/webhooks/{NAME}/{self.account.webhook_token}/"

    # --- Payloads -------------------------------------------------------------------------
    def _setting(self, name: str) -> str:
        return str(self.settings.get(name) or "").strip()

    def _rate(self, invoice: InvoiceRequest) -> float | None:
        return iss_rate(invoice.iss_rate, self.settings.get("aliquota"), provider=NAME)

    def _municipal_body(self, invoice: InvoiceRequest) -> dict:
        city = self._setting("codigo_municipio")
        servico: dict[str, Any] = {
            "valor_servicos": money(invoice.amount),
            "discriminacao": invoice.description,
            "iss_retido": flag(self.settings.get("iss_retido")),
            "item_lista_servico": invoice.service_code or self._setting("item_lista_servico"),
            "codigo_municipio": city,
        }
        municipal_code = invoice.municipal_tax_code or self._setting("codigo_tributario_municipio")
        if municipal_code:
            servico["codigo_tributario_municipio"] = municipal_code
        rate = self._rate(invoice)
        if rate is not None:
            servico["aliquota"] = rate
        body: dict[str, Any] = {
            "data_emissao": (invoice.issued_on.isoformat() if invoice.issued_on else now_iso()),
            "prestador": {
                "cnpj": digits(self._setting("cnpj")),
                "inscricao_municipal": self._setting("inscricao_municipal"),
                "codigo_municipio": city,
            },
            "servico": servico,
        }
        for name in ("natureza_operacao", "regime_especial_tributacao"):
            if self._setting(name):
                body[name] = self._setting(name)
        if self._setting("optante_simples_nacional"):
            body["optante_simples_nacional"] = flag(self.settings["optante_simples_nacional"])
        tomador = _tomador(invoice.customer, customer_address(invoice.extra))
        if tomador:
            body["tomador"] = tomador
        return body

    def _nacional_body(self, invoice: InvoiceRequest) -> dict:
        city = self._setting("codigo_municipio")
        body: dict[str, Any] = {
            "data_emissao": now_iso(),
            "data_competencia": (invoice.issued_on or timezone.localdate()).isoformat(),
            "codigo_municipio_emissora": city,
            "cnpj_prestador": digits(self._setting("cnpj")),
            "regime_especial_tributacao": self._setting("regime_especial_tributacao") or "0",
            "codigo_municipio_prestacao": city,
            "codigo_tributacao_nacional_iss": (
                invoice.service_code or self._setting("item_lista_servico")
            ),
            "descricao_servico": invoice.description,
            "valor_servico": money(invoice.amount),
            # 1 = taxable operation; 1 = ISS not withheld, 2 = withheld by the customer.
            "tributacao_iss": "1",
            "tipo_retencao_iss": "2" if flag(self.settings.get("iss_retido")) else "1",
        }
        if self._setting("inscricao_municipal"):
            body["inscricao_municipal_prestador"] = self._setting("inscricao_municipal")
        if self._setting("codigo_opcao_simples_nacional"):
            body["codigo_opcao_simples_nacional"] = self._setting("codigo_opcao_simples_nacional")
        customer = invoice.customer
        document = digits(customer.cpf_cnpj)
        if len(document) == 14:
            body["cnpj_tomador"] = document
        elif document:
            body["cpf_tomador"] = document
        if customer.name:
            body["razao_social_tomador"] = customer.name
        if customer.email:
            body["email_tomador"] = customer.email
        if customer.phone:
            body["telefone_tomador"] = national_phone(customer.phone)
        address = customer_address(invoice.extra)
        for neutral, field in NACIONAL_ADDRESS.items():
            if address.get(neutral):
                body[field] = address[neutral]
        # The national system sets the ISS rate of the cities that joined it; a rate for the
        # others goes in ``extra`` under Focus's field name for it.
        return body

    def _update(self, reference: str, data: dict) -> InvoiceUpdate:
        raw_status = str(data.get("status") or "")
        status = STATUSES.get(raw_status)
        if status is None:
            logger.warning(
                "%s: unknown status %r of %s, read as processing", NAME, raw_status, reference
            )
            status = "processing"
        return InvoiceUpdate(
            reference=str(data.get("ref") or reference),
            status=status,
            number=str(data.get("numero") or ""),
            verification_code=str(data.get("codigo_verificacao") or ""),
            # The DANFSe PDF where Focus has one, else the city's page of the note.
            pdf_url=str(data.get("url_danfse") or data.get("url") or ""),
            xml_url=self._absolute(data.get("caminho_xml_nota_fiscal")),
            errors=error_messages(data.get("erros")) if status == "error" else [],
        )

    def _absolute(self, path: Any) -> str:
        path = str(path or "")
        if not path or re.match(r"^https?://", path):
            return path
        return self._base_url() + ("" if path.startswith("/") else "/") + path

    # --- Inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> None:
        """The header and value chosen when the hook was registered, compared in constant
        time; then the note must be of the clinic's CNPJ (a token may serve several)."""
        secret = str(self.credentials.get("webhook_secret") or "")
        if not secret:
            raise WebhookUnauthorized(
                "no webhook_secret configured: webhooks are refused", status=403
            )
        header = str(self.settings.get("webhook_header") or DEFAULT_WEBHOOK_HEADER).strip()
        provided = request.header(header).strip()
        if not provided:
            raise WebhookUnauthorized(f"missing {header} header", status=401)
        if not hmac.compare_digest(provided.encode(), secret.encode()):
            raise WebhookUnauthorized(f"wrong {header} header", status=403)
        try:
            data = json.loads(request.body.decode("utf-8")) if request.body else None
        except (UnicodeDecodeError, ValueError):
            return  # authentic but unreadable: stored and marked failed
        ours = digits(self._setting("cnpj"))
        theirs = digits(data.get("cnpj_prestador")) if isinstance(data, dict) else ""
        if ours and theirs and theirs != ours:
            raise WebhookUnauthorized("webhook of another company's note", status=403)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        """One note per call. Dedupe key: ref and status (and, for an authorisation error,
        a digest of the errors: a corrected note sent again may fail differently)."""
        data = _json_object(request)
        reference, raw_status = data.get("ref"), data.get("status")
        if not reference or not raw_status:
            raise WebhookMalformed("missing ref or status")
        key = f"{reference}:{raw_status}"
        if raw_status == "erro_autorizacao":
            errors = json.dumps(data.get("erros"), sort_keys=True, ensure_ascii=False)
            key += ":" + hashlib.sha256(errors.encode()).hexdigest()[:16]
        return WebhookEvent(dedupe_key=key, items=[self._update(str(reference), data)])


# --- Helpers ---------------------------------------------------------------------------------
def _tomador(customer: Customer, address: dict[str, str]) -> dict:
    tomador: dict[str, Any] = {}
    document = digits(customer.cpf_cnpj)
    if len(document) == 14:
        tomador["cnpj"] = document
    elif document:
        tomador["cpf"] = document
    if customer.name:
        tomador["razao_social"] = customer.name
    if customer.email:
        tomador["email"] = customer.email
    if customer.phone:
        tomador["telefone"] = national_phone(customer.phone)
    endereco = {field: address[key] for key, field in MUNICIPAL_ADDRESS.items() if key in address}
    if endereco:
        tomador["endereco"] = endereco
    return tomador


def _focus_error(detail: Any) -> tuple[str, list[str]]:
    """Focus's ``{"codigo", "mensagem", "erros"?}`` refusal: its code and messages."""
    if not isinstance(detail, dict):
        return "", [str(detail)[:300]] if detail else []
    code = str(detail.get("codigo") or "")
    messages = error_messages(detail.get("erros"))
    if not messages and detail.get("mensagem"):
        messages = [str(detail["mensagem"])]
    return code, messages


def _refusal(exc: PermanentProviderError, operation: str) -> PermanentProviderError:
    """A 4xx reworded with Focus's own code and message."""
    code, messages = _focus_error(exc.detail)
    text = f"{NAME}.{operation}: HTTP {exc.http_status}"
    if code:
        text += f", {code}"
    if messages:
        text += ": " + "; ".join(messages)
    elif exc.http_status in (401, 403):
        text += ": token refused"
    return PermanentProviderError(
        text, provider=NAME, http_status=exc.http_status, detail=exc.detail
    )


def _object(data: Any, operation: str) -> dict:
    if not isinstance(data, dict):
        raise TransientProviderError(
            f"{NAME}.{operation}: answer is not a JSON object", provider=NAME
        )
    return data


def _json_object(request: WebhookRequest) -> dict:
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("body is not a JSON object")
    return data
