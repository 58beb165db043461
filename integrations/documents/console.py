"""Console (sandbox) cloud-signing provider: a PSC that runs inside Cuidar for development
and the demo. It issues a DEV certificate (devca, "not ICP-Brasil") for any CPF, accepts any
six-digit one-time password, and signs with a key it keeps in memory. Its documents
validate only against the DEV root (``dev_trust()``), never against ICP-Brasil's."""

from __future__ import annotations

import secrets
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils
from django.utils.translation import gettext_lazy as _

from integrations import registry
from integrations.base import PermanentProviderError
from integrations.console import ConsoleMixin

from .certificates import Trust
from .cloud import CloudCertificate, CloudSession, CloudSigningProvider
from .devca import DevPKI, Issued

_lock = threading.Lock()
_pki: DevPKI | None = None
_people: dict[str, Issued] = {}
_tokens: dict[str, str] = {}  # token → CPF
SESSION_SECONDS = 15 * 60


def _dev_pki() -> DevPKI:
    global _pki
    with _lock:
        if _pki is None:
            _pki = DevPKI.create()
        return _pki


def _person(cpf: str) -> Issued:
    pki = _dev_pki()
    with _lock:
        if cpf not in _people:
            _people[cpf] = pki.issue_person(name=f"PROFISSIONAL DEV {cpf[-4:]}", cpf=cpf)
        return _people[cpf]


def dev_trust() -> Trust:
    """The trust that makes console-signed documents validate (development only)."""
    pki = _dev_pki()
    return Trust(roots=(pki.root.certificate,), crls=tuple(pki.crls()))


@registry.register
class ConsoleCloudSigning(ConsoleMixin, CloudSigningProvider):
    label = _("Console (sandbox): signs with a development certificate, not ICP-Brasil")

    def authorize(self, *, cpf: str, otp: str) -> CloudSession:
        if not (otp.isdigit() and len(otp) == 6):
            raise PermanentProviderError("one-time password must be six digits", provider=self.name)
        _person(cpf)
        token = secrets.token_urlsafe(24)
        with _lock:
            _tokens[token] = cpf
        self._record(
            "authorize", recipient=f"***{cpf[-2:]}", response={"expires_in": SESSION_SECONDS}
        )
        return self._session(token=token, expires_in=SESSION_SECONDS, cpf=cpf)

    def _cpf(self, session: CloudSession) -> str:
        with _lock:
            cpf = _tokens.get(session.access_token)
        if cpf is None:
            raise PermanentProviderError("unknown or expired session", provider=self.name)
        return cpf

    def certificates(self, session: CloudSession) -> list[CloudCertificate]:
        person = _person(self._cpf(session))
        pki = _dev_pki()
        return [
            CloudCertificate(
                alias=f"dev-{session.cpf}",
                certificate=person.certificate,
                chain=(pki.ca.certificate, pki.root.certificate),
            )
        ]

    def sign_hash(
        self, session: CloudSession, *, alias: str, digest: bytes, digest_algorithm: str
    ) -> bytes:
        person = _person(self._cpf(session))
        algorithm = {
            "sha256": hashes.SHA256(),
            "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512(),
        }[digest_algorithm]
        signature = person.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(algorithm))
        self._record("sign_hash", recipient=alias, payload={"digest_algorithm": digest_algorithm})
        return signature
