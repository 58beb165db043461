"""Cloud certificates (A3 in the cloud: BirdID, VIDaaS, … — ICP-Brasil "PSC" services): the
provider interface, the chain that finds where a professional's certificate lives, and the
pyHanko signer that signs through it.

The PSCs speak one OAuth-style protocol (``/v0/oauth/...``): the professional authorizes a
signing session (a one-time password from the PSC's app), the application lists the
session's certificates and sends hashes to ``/v0/oauth/signature``; the private key never
leaves the PSC. Here the PDF is prepared and the CMS built locally (``signing.sign_pdf``); only
the hash of the CMS signed attributes goes out, and the raw PKCS#1 signature comes back.

A clinic's chain (``ProviderAccount`` rows of kind ``signing``, console by default) is tried
in order by ``authorize``: a PSC where the CPF has no certificate refuses and the next is
asked. The session then stays with the provider that opened it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import ClassVar

from asn1crypto import algos
from cryptography import x509
from pyhanko.sign.signers import Signer

from integrations import chains, registry
from integrations.base import PermanentProviderError, Provider

from .certificates import SigningIdentity, _registry, holder_name, to_asn1

KIND = "signing"
#: DER OIDs the PSC API names digest algorithms by.
DIGEST_OIDS = {
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}


@dataclass(frozen=True)
class CloudSession:
    """An authorized signing session at one provider account. ``access_token`` is a secret:
    keep it only as long as the signing takes (never in the database in clear)."""

    provider: str
    clinic_id: int
    account_id: int | None
    access_token: str
    expires_at: dt.datetime
    cpf: str

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"CloudSession(provider={self.provider!r}, cpf=***{self.cpf[-2:]})"


@dataclass(frozen=True)
class CloudCertificate:
    alias: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def name(self) -> str:
        return holder_name(self.certificate)


class CloudSigningProvider(Provider):
    """Interface of a cloud-certificate provider (kind ``signing``)."""

    kind: ClassVar[str] = KIND

    def authorize(self, *, cpf: str, otp: str) -> CloudSession:
        """Open a signing session for the holder of ``cpf`` with the one-time password the
        professional read in the provider's app; ``PermanentProviderError`` when the CPF has
        no certificate here or the password is wrong."""
        raise NotImplementedError

    def certificates(self, session: CloudSession) -> list[CloudCertificate]:
        raise NotImplementedError

    def sign_hash(
        self, session: CloudSession, *, alias: str, digest: bytes, digest_algorithm: str
    ) -> bytes:
        """The raw signature (RSA PKCS#1 v1.5 over the DigestInfo of ``digest``)."""
        raise NotImplementedError

    def _session(self, *, token: str, expires_in: int, cpf: str) -> CloudSession:
        return CloudSession(
            provider=self.name,
            clinic_id=self.account.clinic_id,
            account_id=self.account.pk,
            access_token=token,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(expires_in or 0)),
            cpf=cpf,
        )


def authorize(clinic, *, cpf: str, otp: str) -> CloudSession:
    """Ask the clinic's signing chain, in order, to open a session for ``cpf``."""
    digits = "".join(ch for ch in cpf if ch.isdigit())
    return chains.run_chain(clinic, KIND, "authorize", cpf=digits, otp=otp).value


def provider_for(session: CloudSession) -> CloudSigningProvider:
    from integrations.models import ProviderAccount

    if session.account_id is not None:
        account = ProviderAccount.objects.get(pk=session.account_id, clinic_id=session.clinic_id)
    else:  # the chain's unsaved default (console)
        account = ProviderAccount(clinic_id=session.clinic_id, kind=KIND, provider=session.provider)
    return registry.get(KIND, session.provider)(account)


class CloudSigner(Signer):
    """A pyHanko signer whose key lives at the provider: the digest of the CMS signed
    attributes goes to ``sign_hash``; nothing else leaves."""

    def __init__(
        self, provider: CloudSigningProvider, session: CloudSession, cert: CloudCertificate
    ):
        self.provider = provider
        self.session = session
        self.alias = cert.alias
        self._key_bytes = cert.certificate.public_key().key_size // 8
        super().__init__(
            signing_cert=to_asn1(cert.certificate),
            cert_registry=_registry([cert.certificate, *cert.chain]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
        )

    def presign(self, data: bytes, digest_algorithm: str) -> None:
        """Ask the provider to sign ``data`` (the DER of the CMS signed attributes); the
        answer is kept for ``async_sign_raw``. Called by ``signing.sign_pdf`` outside any
        event loop: this is a network call and writes the call log."""
        digest = hashlib.new(digest_algorithm, data).digest()
        self._presigned = (
            data,
            self.provider.sign_hash(
                self.session, alias=self.alias, digest=digest, digest_algorithm=digest_algorithm
            ),
        )

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run=False) -> bytes:
        if dry_run:
            return bytes(self._key_bytes)
        presigned = getattr(self, "_presigned", None)
        if presigned is None or presigned[0] != data:
            raise PermanentProviderError(
                "a cloud signature must be prepared with presign() first",
                provider=self.provider.name,
            )
        return presigned[1]


def identity(session: CloudSession, *, alias: str = "") -> SigningIdentity:
    """The session's certificate (``alias``, or the only/first one) as a signing identity for
    ``signing.sign_pdf``: the same checks run before the PSC is asked to sign."""
    if session.expires_at <= dt.datetime.now(dt.UTC):
        raise PermanentProviderError("the signing session expired; authorize again")
    provider = provider_for(session)
    certs = provider.certificates(session)
    chosen = next((c for c in certs if not alias or c.alias == alias), None)
    if chosen is None:
        raise PermanentProviderError(
            "no certificate in this signing session", provider=session.provider
        )
    return SigningIdentity(
        certificate=chosen.certificate,
        chain=chosen.chain,
        signer=CloudSigner(provider, session, chosen),
    )


def load_certificate(text: str) -> x509.Certificate:
    """A certificate as PSCs send it: PEM, or base64 DER."""
    import base64

    text = text.strip()
    if text.startswith("-----BEGIN"):
        return x509.load_pem_x509_certificate(text.encode())
    return x509.load_der_x509_certificate(base64.b64decode(text))
