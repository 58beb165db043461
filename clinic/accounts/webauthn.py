"""Passkeys (django-otp-webauthn): the relying party is the host the page came from."""

from __future__ import annotations

from django_otp_webauthn.helpers import WebAuthnHelper


class CuidarWebAuthnHelper(WebAuthnHelper):
    """The relying party id is the request's host (already checked against ALLOWED_HOSTS)
    and its origin the page's; a passkey made on one address works only there."""

    def get_relying_party_domain(self) -> str:
        return self.request.get_host().rsplit(":", 1)[0].strip("[]")

    def get_allowed_origins(self) -> list[str]:
        return [f"{self.request.scheme}://{self.request.get_host()}"]
