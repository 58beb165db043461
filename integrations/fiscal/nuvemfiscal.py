"""Nuvem Fiscal as a ``fiscal`` provider (NFS-e through the DPS layout).

Wire format from the SDKs Nuvem Fiscal generates from its OpenAPI
(nuvem-fiscal/nuvemfiscal-sdk-php: ``docs/Api/NfseApi.md``, ``NfseDpsPedidoEmissao``,
``InfDPS``, ``TribMunicipal``, ``Nfse``, ``NfseCancelamento``), its authentication page
(dev.nuvemfiscal.com.br/docs/autenticacao) and ``PROVIDERS.md`` §11:

- token: OAuth2 client credentials, ``POST https://auth.nuvemfiscal.com.br/oauth/token``
  (form ``grant_type=client_credentials, client_id, client_secret, scope``; the same token
  URL serves sandbox and production credentials) → ``{"access_token", "expires_in"}``. The
  token is kept in Django's cache, per account, until a minute before it expires; a 401 drops
  it and fetches a new one once.
- API ``https://api.nuvemfiscal.com.br`` (production) or ``https://api.sandbox.nuvemfiscal.com.br``
  (tests), ``Authorization: Bearer <token>``.
- issue: ``POST /nfse/dps`` ``{"provedor": "padrao" | "nacional", "ambiente", "referencia",
  "infDPS": {tpAmb, dhEmi, dCompet, prest, toma, serv, valores}}`` (keys as in the national
  DPS layout) → the ``Nfse`` (``id``, ``status``).
- read: Nuvem Fiscal keys invoices on its own ``id``, which ``InvoiceUpdate`` has no field
  for: the adapter finds an invoice by our reference with ``GET /nfse?cpf_cnpj&ambiente&
  referencia`` (documented filter) and reads the ``data[]`` entry whose ``referencia`` is
  ours. ``status`` ``pendente | processando | autorizada | negada | erro | cancelada |
  substituida``; ``numero``, ``codigo_verificacao``, ``mensagens[{codigo, descricao,
  correcao}]``; PDF and XML at ``GET /nfse/{id}/pdf|xml`` (API addresses: they need the
  token).
- idempotency: ``referencia`` "helps avoid sending the same document twice" (OpenAPI); what
  Nuvem Fiscal answers to a repeated one is not documented, so issuing looks the reference up
  first and answers the invoice already there (unless it was refused, which is sent again).
- cancel: ``POST /nfse/{id}/cancelamento`` ``{"codigo"?, "motivo"}`` → ``NfseCancelamento``
  (``status``, ``mensagens``); the city may take a while (``pendente``).
- webhooks: none documented for NFS-e: invoices are polled (the base class refuses webhooks).
- health: a token is issued for the credentials.

Amounts: ``vServ`` with two decimals; ``pAliq`` as a percentage.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from typing import Any

from django.core.cache import cache
from django.utils import timezone
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

NAME = "nuvemfiscal"
TOKEN_URL = "https://auth.nuvemfiscal.com.br/oauth/token"  # noqa: S105 - an address
API_URLS = {
    "producao": "https://api.nuvemfiscal.com.br",
    "homologacao": "https://api.sandbox.nuvemfiscal.com.br",
}
DEFAULT_SCOPE = "nfse"
#: A token is dropped this long before Nuvem Fiscal says it expires.
TOKEN_MARGIN_SECONDS = 60
TOKEN_CACHE_KEY = "integrations:nuvemfiscal:token:{account}:{fingerprint}"  # noqa: S105

#: Nuvem Fiscal's invoice statuses → ours (``substituida``: replaced, no longer valid).
STATUSES = {
    "pendente": "processing",
    "processando": "processing",
    "autorizada": "authorized",
    "negada": "error",
    "rejeitada": "error",
    "erro": "error",
    "cancelada": "cancelled",
    "substituida": "cancelled",
}
#: A cancellation's statuses: done, still at the city, or refused (the invoice stands).
CANCEL_DONE = {"concluido", "concluida", "cancelada", "homologado"}
CANCEL_PENDING = {"pendente", "processando"}


@registry.register
class NuvemFiscal(FiscalProvider):
    kind = ProviderKind.FISCAL
    name = NAME
    label = _("Nuvem Fiscal (NFS-e)")
    credentials_schema = {
        "client_id": _("Client ID of the Nuvem Fiscal API credential (sandbox or production)."),
        "client_secret": _("Client secret of that credential."),
    }
    settings_schema = {
        "environment": _("homologacao (sandbox API) or producao."),
        "cnpj": _("CNPJ of the clinic (service provider), as registered at Nuvem Fiscal."),
        "codigo_municipio": _("IBGE code of the city where the service is provided."),
        "nacional": _("true to issue through the NFS-e Nacional instead of the city's system."),
        "item_lista_servico": _("Default national tax code of the service (cTribNac)."),
        "codigo_tributario_municipio": _("Default municipal tax code (cTribMun), if any."),
        "aliquota": _("Default ISS rate in percent, e.g. 2 or 2.5."),
        "iss_retido": _("true when the customer withholds the ISS."),
        "codigo_cancelamento": _("Cancellation code, for cities that ask for one."),
        "scope": _("OAuth scopes to ask for (default nfse)."),
    }

    # --- Token ----------------------------------------------------------------------------
    def _environment(self) -> str:
        environment = str(self.settings.get("environment") or "homologacao").strip().lower()
        return environment if environment in API_URLS else "homologacao"

    def _scope(self) -> str:
        return str(self.settings.get("scope") or DEFAULT_SCOPE).strip()

    def _token_key(self) -> str:
        # The credentials' fingerprint in the key: new credentials never reuse an old token.
        material = "\0".join(
            [
                str(self.credentials.get("client_id") or ""),
                str(self.credentials.get("client_secret") or ""),
                self._scope(),
            ]
        )
        return TOKEN_CACHE_KEY.format(
            account=self.account.pk or "unsaved",
            fingerprint=hashlib.sha256(material.encode()).hexdigest()[:16],
        )

    def access_token(self, *, fresh: bool = False) -> str:
        """A Bearer token for the account, from the cache unless ``fresh``."""
        key = self._token_key()
        if not fresh:
            cached = cache.get(key)
            # The expiry travels with the token: a cache that keeps it a little longer
            # (Redis expires on its own clock) never hands out a token past its time.
            if isinstance(cached, dict) and cached.get("expires_at", 0) > time.time():
                return cached["token"]
        try:
            response = self.request(
                "POST",
                TOKEN_URL,
                operation="token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": str(self.credentials.get("client_id") or ""),
                    "client_secret": str(self.credentials.get("client_secret") or ""),
                    "scope": self._scope(),
                },
            )
        except PermanentProviderError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {}
            reason = detail.get("error_description") or detail.get("error") or "refused"
            raise PermanentProviderError(
                f"{NAME}.token: HTTP {exc.http_status}: client credentials {reason}",
                provider=NAME,
                http_status=exc.http_status,
                detail=exc.detail,
            ) from exc
        data = response_json(response)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise TransientProviderError(
                f"{NAME}.token: answer without access_token", provider=NAME
            )
        try:
            expires_in = int(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600
        lifetime = max(1, expires_in - TOKEN_MARGIN_SECONDS)
        cache.set(
            key, {"token": str(token), "expires_at": time.time() + lifetime}, timeout=lifetime
        )
        return str(token)

    def _api(self, method: str, path: str, *, operation: str, retry: bool = True, **kwargs):
        """A call to the API with the cached token; a 401 (token revoked or expired early)
        fetches a new one and tries once more."""
        url = API_URLS[self._environment()] + path
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.access_token(fresh=attempt == 2)}"}
            try:
                return self.request(
                    method, url, operation=operation, headers=headers, retry=retry, **kwargs
                )
            except PermanentProviderError as exc:
                if exc.http_status != 401 or attempt == 2:
                    raise
                cache.delete(self._token_key())
        raise AssertionError("unreachable")  # pragma: no cover

    # --- Outbound -------------------------------------------------------------------------
    def _missing(self, *, to_issue: bool = False) -> list[str]:
        names = [n for n in ("client_id", "client_secret") if not self.credentials.get(n)]
        needed = ["cnpj", "codigo_municipio"] if to_issue else ["cnpj"]
        return names + [n for n in needed if not self.settings.get(n)]

    def _require(self, operation: str, *, to_issue: bool = False) -> None:
        missing = self._missing(to_issue=to_issue)
        if missing:
            raise PermanentProviderError(
                f"{NAME}.{operation}: account not configured (missing {', '.join(missing)})",
                provider=NAME,
            )

    def _find(self, reference: str) -> dict | None:
        """The invoice issued under our reference, if any (the most recent first)."""
        response = self._api(
            "GET",
            "/nfse",
            operation="find",
            params={
                "cpf_cnpj": digits(self.settings.get("cnpj")),
                "ambiente": self._environment(),
                "referencia": reference,
            },
        )
        data = response_json(response)
        found = data.get("data") if isinstance(data, dict) else data
        for invoice in found if isinstance(found, list) else []:
            if isinstance(invoice, dict) and str(invoice.get("referencia") or "") == reference:
                return invoice
        return None

    def issue(self, invoice: InvoiceRequest) -> InvoiceUpdate:
        """Look the reference up, then send the DPS unless an invoice already stands under it
        (one in processing, authorised or cancelled is answered as it is)."""
        self._require("issue", to_issue=True)
        reference = invoice.reference
        existing = self._find(reference)
        if existing is not None and self._update(reference, existing).status != "error":
            return self._update(reference, existing)
        try:
            response = self._api(
                "POST",
                "/nfse/dps",
                operation="issue",
                json=merge(self._body(invoice), provider_extra(invoice.extra)),
                # What a repeated referencia gets is not documented: a timed-out POST is
                # not repeated inline; the next attempt looks the reference up first.
                retry=False,
            )
        except PermanentProviderError as exc:
            if exc.http_status in (401, 403, 404):
                raise _refusal(exc, "issue") from exc
            # Refused: a concurrent issue of the same reference may have won.
            existing = self._find(reference)
            if existing is not None and self._update(reference, existing).status != "error":
                return self._update(reference, existing)
            return InvoiceUpdate(
                reference=reference, status="error", errors=_refusal_messages(exc) or [str(exc)]
            )
        return self._update(reference, _object(response_json(response), "issue"))

    def get_invoice(self, reference: str) -> InvoiceUpdate:
        self._require("get_invoice")
        found = self._find(reference)
        if found is None:
            raise _not_found(reference, "get_invoice")
        return self._update(reference, found)

    def cancel(self, reference: str, justification: str) -> InvoiceUpdate:
        """Ask the city to cancel. Done → ``cancelled``; still at the city → ``processing``
        (read again later); refused → the invoice as it stands, with the reasons."""
        justification = check_justification(justification, provider=NAME)
        self._require("cancel")
        found = self._find(reference)
        if found is None:
            raise _not_found(reference, "cancel")
        current = self._update(reference, found)
        if current.status == "cancelled":
            return current
        body = {"motivo": justification}
        if self.settings.get("codigo_cancelamento"):
            body["codigo"] = str(self.settings["codigo_cancelamento"])
        try:
            response = self._api(
                "POST",
                f"/nfse/{found['id']}/cancelamento",
                operation="cancel",
                json=body,
                retry=False,
            )
        except PermanentProviderError as exc:
            if exc.http_status in (401, 403, 404):
                raise _refusal(exc, "cancel") from exc
            return replace(current, errors=_refusal_messages(exc) or [str(exc)])
        data = _object(response_json(response), "cancel")
        status = str(data.get("status") or "").lower()
        if status in CANCEL_DONE:
            return replace(current, status="cancelled", errors=[])
        if status in CANCEL_PENDING:
            return replace(current, status="processing", errors=[])
        return replace(current, errors=error_messages(data.get("mensagens")) or [status])

    def health(self) -> HealthResult:
        """A fresh token for the credentials: they are valid and the scopes granted."""
        missing = [n for n in ("client_id", "client_secret") if not self.credentials.get(n)]
        if missing:
            return HealthResult(
                ok=False,
                detail=gettext("Not configured: %(names)s.") % {"names": ", ".join(missing)},
            )
        try:
            self.access_token(fresh=True)
        except ProviderError as exc:
            return HealthResult(
                ok=False, detail=gettext("Provider call failed: %(error)s") % {"error": exc}
            )
        return HealthResult(
            ok=True,
            detail=gettext("Access token issued (scopes: %(scope)s).") % {"scope": self._scope()},
        )

    # --- Payloads -------------------------------------------------------------------------
    def _setting(self, name: str) -> str:
        return str(self.settings.get(name) or "").strip()

    def _body(self, invoice: InvoiceRequest) -> dict:
        environment = self._environment()
        service: dict[str, Any] = {
            "cTribNac": invoice.service_code or self._setting("item_lista_servico"),
            "xDescServ": invoice.description,
        }
        municipal_code = invoice.municipal_tax_code or self._setting("codigo_tributario_municipio")
        if municipal_code:
            service["cTribMun"] = municipal_code
        # 1 = taxable operation; 1 = ISS not withheld, 2 = withheld by the customer.
        tax: dict[str, Any] = {
            "tribISSQN": 1,
            "tpRetISSQN": 2 if flag(self.settings.get("iss_retido")) else 1,
        }
        rate = iss_rate(invoice.iss_rate, self.settings.get("aliquota"), provider=NAME)
        if rate is not None:
            tax["pAliq"] = rate
        dps: dict[str, Any] = {
            "tpAmb": 1 if environment == "producao" else 2,
            "dhEmi": now_iso(),
            "dCompet": (invoice.issued_on or timezone.localdate()).isoformat(),
            "prest": {"CNPJ": digits(self._setting("cnpj"))},
            "serv": {
                "locPrest": {"cLocPrestacao": self._setting("codigo_municipio")},
                "cServ": service,
            },
            "valores": {"vServPrest": {"vServ": money(invoice.amount)}, "trib": {"tribMun": tax}},
        }
        taker = _taker(invoice)
        if taker:
            dps["toma"] = taker
        return {
            "provedor": "nacional" if flag(self.settings.get("nacional")) else "padrao",
            "ambiente": environment,
            "referencia": invoice.reference,
            "infDPS": dps,
        }

    def _update(self, reference: str, data: dict) -> InvoiceUpdate:
        raw_status = str(data.get("status") or "").lower()
        status = STATUSES.get(raw_status)
        if status is None:
            logger.warning(
                "%s: unknown status %r of %s, read as processing", NAME, raw_status, reference
            )
            status = "processing"
        invoice_id = str(data.get("id") or "")
        has_files = bool(invoice_id) and status in ("authorized", "cancelled")
        base = API_URLS[self._environment()]
        return InvoiceUpdate(
            reference=reference,
            status=status,
            number=str(data.get("numero") or ""),
            verification_code=str(data.get("codigo_verificacao") or ""),
            pdf_url=f"{base}/nfse/{invoice_id}/pdf" if has_files else "",
            xml_url=f"{base}/nfse/{invoice_id}/xml" if has_files else "",
            errors=error_messages(data.get("mensagens")) if status == "error" else [],
        )


# --- Helpers ---------------------------------------------------------------------------------
def _taker(invoice: InvoiceRequest) -> dict:
    customer = invoice.customer
    taker: dict[str, Any] = {}
    document = digits(customer.cpf_cnpj)
    if len(document) == 14:
        taker["CNPJ"] = document
    elif document:
        taker["CPF"] = document
    if customer.name:
        taker["xNome"] = customer.name
    if customer.email:
        taker["email"] = customer.email
    if customer.phone:
        taker["fone"] = national_phone(customer.phone)
    address = customer_address(invoice.extra)
    if address.get("street") or address.get("postal_code"):
        end: dict[str, Any] = {}
        national = {"cMun": address.get("city_code"), "CEP": address.get("postal_code")}
        if any(national.values()):
            end["endNac"] = {k: v for k, v in national.items() if v}
        for key, field in (
            ("street", "xLgr"),
            ("number", "nro"),
            ("complement", "xCpl"),
            ("district", "xBairro"),
        ):
            if address.get(key):
                end[field] = address[key]
        taker["end"] = end
    return taker


def _refusal_messages(exc: PermanentProviderError) -> list[str]:
    """The messages of a 4xx body, whatever its shape (``{"error": {"message", "errors"}}``,
    ``{"mensagens": […]}``, a list, a text)."""
    detail = exc.detail
    if isinstance(detail, list):
        return error_messages(detail)
    if not isinstance(detail, dict):
        return [str(detail)[:300]] if detail else []
    error = detail.get("error") if isinstance(detail.get("error"), dict) else detail
    messages = error_messages(error.get("errors") or error.get("mensagens"))
    if not messages and (error.get("message") or error.get("mensagem")):
        messages = [str(error.get("message") or error.get("mensagem"))]
    return messages


def _refusal(exc: PermanentProviderError, operation: str) -> PermanentProviderError:
    messages = _refusal_messages(exc)
    text = f"{NAME}.{operation}: HTTP {exc.http_status}"
    if messages:
        text += ": " + "; ".join(messages)
    return PermanentProviderError(
        text, provider=NAME, http_status=exc.http_status, detail=exc.detail
    )


def _not_found(reference: str, operation: str) -> PermanentProviderError:
    return PermanentProviderError(
        f"{NAME}.{operation}: no invoice with reference {reference!r}",
        provider=NAME,
        http_status=404,
    )


def _object(data: Any, operation: str) -> dict:
    if not isinstance(data, dict):
        raise TransientProviderError(
            f"{NAME}.{operation}: answer is not a JSON object", provider=NAME
        )
    return data
