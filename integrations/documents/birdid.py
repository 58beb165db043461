"""BirdID (Soluti/VaultID) cloud certificates — the ICP-Brasil PSC API.

Wire format (docs.vaultid.com.br, "Nuvem Pública › Public API"; the same ``/v0/oauth``
protocol VIDaaS and other PSCs follow):

- ``POST {base}/v0/oauth/pwd_authorize`` JSON ``{client_id, client_secret, username: CPF,
  password: OTP, grant_type: "password", scope: "single_signature"}`` →
  ``{access_token, token_type: "Bearer", expires_in, scope, authorized_identification}``;
- ``GET {base}/v0/oauth/certificate-discovery`` (Bearer) →
  ``{status, certificates: [{alias, certificate}]}`` (certificate: base64 DER or PEM);
- ``POST {base}/v0/oauth/signature`` (Bearer) ``{certificate_alias, hashes: [{id, alias,
  hash (hex), hash_algorithm (OID), signature_format: "RAW"}]}`` →
  ``{signatures: [{id, raw_signature (base64)}], certificate_alias}``.

Hosts: production ``https://api.birdid.com.br``, homologação ``https://apihom.birdid.com.br``.
The recordings in tests/contract/birdid/ were written from that documentation, not captured
from a live account: replay them against the homologação host before first production use.
"""

from __future__ import annotations

import base64

from django.utils.translation import gettext_lazy as _

from integrations import registry
from integrations.base import HealthResult, PermanentProviderError
from integrations.http import response_json

from .cloud import (
    DIGEST_OIDS,
    CloudCertificate,
    CloudSession,
    CloudSigningProvider,
    load_certificate,
)

DEFAULT_BASE_URL = "https://api.birdid.com.br"


@registry.register
class BirdIdSigning(CloudSigningProvider):
    name = "birdid"
    label = _("BirdID (cloud certificate)")
    credentials_schema = {
        "client_id": _("Application id registered at BirdID."),
        "client_secret": _("Application secret."),
    }
    settings_schema = {
        "base_url": _("API host; homologação: https://apihom.birdid.com.br"),
    }

    @property
    def base_url(self) -> str:
        return (self.settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    _token = ""

    def secrets(self) -> list[str]:
        # The session's bearer token is redacted from logs and the call log, like the
        # account's credentials.
        return [*super().secrets(), *([self._token] if self._token else [])]

    def authorize(self, *, cpf: str, otp: str) -> CloudSession:
        response = self.request(
            "POST",
            f"{self.base_url}/v0/oauth/pwd_authorize",
            operation="authorize",
            # A one-time password works once: never resend it.
            retry=False,
            json={
                "client_id": self.credentials.get("client_id", ""),
                "client_secret": self.credentials.get("client_secret", ""),
                "username": cpf,
                "password": otp,
                "grant_type": "password",
                "scope": "single_signature",
            },
        )
        data = response_json(response)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise PermanentProviderError(
                "BirdID answered without an access token", provider=self.name
            )
        return self._session(token=token, expires_in=data.get("expires_in") or 0, cpf=cpf)

    def _bearer(self, session: CloudSession) -> dict:
        self._token = session.access_token
        return {"Authorization": f"Bearer {session.access_token}", "Accept": "application/json"}

    def certificates(self, session: CloudSession) -> list[CloudCertificate]:
        response = self.request(
            "GET",
            f"{self.base_url}/v0/oauth/certificate-discovery",
            operation="certificates",
            headers=self._bearer(session),
        )
        data = response_json(response)
        out = []
        for item in (data or {}).get("certificates") or []:
            if item.get("alias") and item.get("certificate"):
                out.append(
                    CloudCertificate(
                        alias=item["alias"], certificate=load_certificate(item["certificate"])
                    )
                )
        return out

    def sign_hash(
        self, session: CloudSession, *, alias: str, digest: bytes, digest_algorithm: str
    ) -> bytes:
        response = self.request(
            "POST",
            f"{self.base_url}/v0/oauth/signature",
            operation="sign_hash",
            # A single_signature token is spent by the first call that reaches BirdID.
            retry=False,
            headers=self._bearer(session),
            json={
                "certificate_alias": alias,
                "hashes": [
                    {
                        "id": "1",
                        "alias": "documento.pdf",
                        "hash": digest.hex(),
                        "hash_algorithm": DIGEST_OIDS[digest_algorithm],
                        "signature_format": "RAW",
                    }
                ],
            },
        )
        data = response_json(response)
        try:
            return base64.b64decode(data["signatures"][0]["raw_signature"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise PermanentProviderError(
                "BirdID answered without a signature", provider=self.name
            ) from None

    def health(self) -> HealthResult:
        missing = [k for k in ("client_id", "client_secret") if not self.credentials.get(k)]
        if missing:
            return HealthResult(
                ok=False,
                detail=str(_("Not configured: %(names)s.")) % {"names": ", ".join(missing)},
            )
        # BirdID has no unauthenticated probe: a signing session needs the professional.
        return HealthResult(ok=True, detail=str(_("Configured; checked at the next signature.")))
