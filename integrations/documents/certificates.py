"""Signing certificates: reading an A1 (PKCS#12), the ICP-Brasil identity inside a
certificate, and the checks every signature must pass BEFORE it is made.

The checks, each refusing with its own reason (``SignerRefused.reason``):
validity period, key usage non-repudiation (CFM 2.299/2021 asks for a qualified signature),
chain to a configured trust root, revocation by CRL, and the CPF inside the certificate
(DOC-ICP-04, otherName 2.16.76.1.3.1) equal to the professional's CPF.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from django.conf import settings
from django.utils.translation import gettext as _
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as cv_errors

from . import _aio
from .errors import SignerRefused
from .policy import OTHERNAME_PERSON_DATA

logger = logging.getLogger(__name__)

#: Fetches a CRL's DER bytes from a distribution-point URL (``integrations.http`` by default).
CrlFetcher = Callable[[str], bytes]


@dataclass(frozen=True)
class PersonData:
    """What DOC-ICP-04 packs into otherName 2.16.76.1.3.1 of a natural person."""

    birth_date: str  # ddmmyyyy, "00000000" when absent
    cpf: str
    nis: str
    rg: str


def _other_name_text(value: bytes) -> str:
    """The otherName value as text: ICP-Brasil CAs encode it as an OCTET STRING, some as a
    PrintableString/UTF8String (SERPRO's demoiselle reads both); an extra explicit tag is
    unwrapped."""
    from asn1crypto.core import Asn1Value, OctetString

    parsed = Asn1Value.load(value)
    if parsed.tag != 4 and parsed.class_ == 2:  # [0] EXPLICIT around the value
        parsed = Asn1Value.load(parsed.contents)
    if parsed.tag == 4:
        return OctetString.load(parsed.dump()).native.decode("latin-1")
    return parsed.contents.decode("latin-1")


def person_data(certificate: x509.Certificate) -> PersonData | None:
    """The holder's birth date, CPF, NIS and RG from the certificate, or ``None`` when it
    carries no 2.16.76.1.3.1 (a company's or a foreign certificate)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string != OTHERNAME_PERSON_DATA:
            continue
        try:
            text = _other_name_text(other.value)
        except ValueError:
            return None
        # Fixed widths (DOC-ICP-04): 8 birth date, 11 CPF, 11 NIS, 15 RG, then issuer/UF.
        return PersonData(
            birth_date=text[0:8], cpf=text[8:19], nis=text[19:30], rg=text[30:45].lstrip("0")
        )
    return None


def holder_name(certificate: x509.Certificate) -> str:
    """The CN without the ``:CPF`` suffix ICP-Brasil e-CPF certificates carry."""
    names = certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else ""
    return cn.rsplit(":", 1)[0] if ":" in cn else cn


@dataclass(frozen=True)
class SigningIdentity:
    """A certificate able to sign: the pyHanko ``signer`` that makes the CMS signature (an
    A1's key in memory, or a cloud provider's sign-hash call), the certificate and the
    chain that came with it (issuers, root last when known)."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    signer: Signer

    @property
    def name(self) -> str:
        return holder_name(self.certificate)


def load_a1(pkcs12_bytes: bytes, password: str) -> SigningIdentity:
    """An A1 certificate from its PKCS#12 file; the password is asked at signing time and
    not kept here. A wrong password and a broken file are refused with different reasons."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            pkcs12_bytes, password.encode() if password else None
        )
    except ValueError as exc:
        if "password" in str(exc).lower() or "mac" in str(exc).lower():
            raise SignerRefused(
                SignerRefused.BAD_PASSWORD, _("The certificate password is wrong.")
            ) from None
        raise SignerRefused(
            SignerRefused.UNREADABLE, _("The certificate file could not be read (PKCS#12).")
        ) from None
    if key is None or cert is None:
        raise SignerRefused(
            SignerRefused.UNREADABLE, _("The certificate file holds no key and certificate.")
        )
    signer = A1Signer(
        signing_cert=to_asn1(cert),
        signing_key=_key_to_asn1(key),
        cert_registry=_registry([cert, *extra]),
    )
    signer.private_key = key
    return SigningIdentity(certificate=cert, chain=tuple(extra), signer=signer)


class A1Signer(SimpleSigner):
    """pyHanko's ``SimpleSigner`` re-reads the private key from DER on every signature (an
    RSA key's consistency check: ~40 % of a signature's time, bench/documents.py); this one
    signs with the key ``load_a1`` already holds."""

    private_key = None

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from pyhanko.sign.general import get_pyca_cryptography_hash

        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        pkcs1 = ("rsassa_pkcs1v15", "sha256_rsa", "sha384_rsa", "sha512_rsa")
        if isinstance(self.private_key, RSAPrivateKey) and (mechanism["algorithm"].native in pkcs1):
            return self.private_key.sign(
                data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm)
            )
        return super().sign_raw(data, digest_algorithm)


def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _key_to_asn1(key):
    from pyhanko.keys.internal import translate_pyca_cryptography_key_to_asn1

    return translate_pyca_cryptography_key_to_asn1(key)


def _registry(certs: Iterable[x509.Certificate]):
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    return SimpleCertificateStore.from_certs([to_asn1(c) for c in certs])


# --- Trust --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trust:
    """What a signature is checked against: the trust roots (the ICP-Brasil roots in
    production, a test root in tests), CRLs already at hand, and how to fetch the rest."""

    roots: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    crl_fetcher: CrlFetcher | None = None
    extra_certs: tuple[x509.Certificate, ...] = field(default=())

    def validation_context(
        self,
        *,
        chain: Sequence[x509.Certificate] = (),
        at: dt.datetime | None = None,
        revocation: bool = True,
        crls: Sequence[bytes] = (),
    ) -> ValidationContext:
        return ValidationContext(
            trust_roots=[to_asn1(c) for c in self.roots],
            other_certs=[to_asn1(c) for c in (*chain, *self.extra_certs)],
            crls=[*(c.public_bytes(Encoding.DER) for c in self.crls), *crls],
            allow_fetching=False,
            revocation_mode="hard-fail" if revocation else "soft-fail",
            moment=at,
        )


def default_trust() -> Trust:
    """The configured roots: ``CUIDAR_ICP_TRUST_ROOTS``, a PEM bundle (or a folder of PEM/DER
    files) of the ICP-Brasil roots, published by ITI; ``CUIDAR_ICP_INTERMEDIATES`` likewise
    for the issuing CAs (a cloud certificate arrives without its chain; these are path
    candidates, never trusted by themselves). CRLs are fetched through ``integrations.http``."""
    roots = getattr(settings, "CUIDAR_ICP_TRUST_ROOTS", "")
    intermediates = getattr(settings, "CUIDAR_ICP_INTERMEDIATES", "")
    return Trust(
        roots=tuple(load_certificates(roots)) if roots else (),
        extra_certs=tuple(load_certificates(intermediates)) if intermediates else (),
        crl_fetcher=fetch_crl,
    )


def load_certificates(location: str | Path) -> list[x509.Certificate]:
    path = Path(location)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    certs: list[x509.Certificate] = []
    for file in files:
        data = file.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            certs.extend(x509.load_pem_x509_certificates(data))
        else:
            certs.append(x509.load_der_x509_certificate(data))
    return certs


def fetch_crl(url: str) -> bytes:
    """A CRL over the project's HTTP layer (timeouts, retries, call log)."""
    from integrations import http

    response = http.request("GET", url, provider="icp-crl", operation="crl")
    return response.content


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in (point.full_name or [])
        if isinstance(name, x509.UniformResourceIdentifier)
        and name.value.lower().startswith("http")
    ]


def _fetched_crls(trust: Trust, certs: Sequence[x509.Certificate]) -> list[bytes]:
    if trust.crl_fetcher is None:
        return []
    have = {c.issuer for c in trust.crls}
    out: list[bytes] = []
    for cert in certs:
        if cert.issuer in have:
            continue
        for url in _crl_urls(cert):
            try:
                data = trust.crl_fetcher(url)
            except Exception as exc:
                logger.warning("CRL %s could not be fetched: %s", url, exc)
                continue
            if b"-----BEGIN" in data:
                data = x509.load_pem_x509_crl(data).public_bytes(Encoding.DER)
            asn1_crl.CertificateList.load(data)  # a broken download fails here, clearly
            out.append(data)
            break
    return out


def _issuers(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """``cert``'s issuers found in ``pool``, nearest first (by name: enough to pick which
    CRLs to fetch and which certificates to offer the path builder, which checks them)."""
    by_subject = {c.subject: c for c in pool}
    out: list[x509.Certificate] = []
    current = cert
    while current.issuer != current.subject and current.issuer in by_subject:
        current = by_subject[current.issuer]
        if current in out:
            break
        out.append(current)
    return out


# --- The checks ---------------------------------------------------------------------------------
def _digits(value: str) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def check_signer(
    identity: SigningIdentity,
    *,
    cpf: str,
    trust: Trust | None = None,
    at: dt.datetime | None = None,
) -> PersonData:
    """Refuse (``SignerRefused``) unless ``identity`` may sign for the professional whose
    CPF is ``cpf`` at ``at`` (now). Returns what the certificate says of its holder."""
    trust = trust or default_trust()
    at = at or dt.datetime.now(dt.UTC)
    cert = identity.certificate

    if at < cert.not_valid_before_utc:
        raise SignerRefused(
            SignerRefused.NOT_YET_VALID,
            _("The certificate is valid only from %(date)s.")
            % {"date": cert.not_valid_before_utc.date().isoformat()},
        )
    if at > cert.not_valid_after_utc:
        raise SignerRefused(
            SignerRefused.EXPIRED,
            _("The certificate expired on %(date)s.")
            % {"date": cert.not_valid_after_utc.date().isoformat()},
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        non_repudiation = usage.content_commitment
    except x509.ExtensionNotFound:
        non_repudiation = False
    if not non_repudiation:
        raise SignerRefused(
            SignerRefused.NO_NON_REPUDIATION,
            _(
                "The certificate is not for signatures (its key usage lacks "
                "non-repudiation): use your ICP-Brasil signing certificate."
            ),
        )

    data = person_data(cert)
    if data is None or not data.cpf.strip("0"):
        raise SignerRefused(
            SignerRefused.NO_CPF,
            _("The certificate carries no CPF (ICP-Brasil otherName 2.16.76.1.3.1)."),
        )
    if data.cpf != _digits(cpf).rjust(11, "0"):
        raise SignerRefused(
            SignerRefused.CPF_MISMATCH,
            _("The certificate belongs to another person (its CPF is not the professional's)."),
        )

    if not trust.roots:
        raise SignerRefused(
            SignerRefused.UNTRUSTED,
            _("No ICP-Brasil trust root is configured (CUIDAR_ICP_TRUST_ROOTS)."),
        )
    chain = _issuers(cert, [*identity.chain, *trust.extra_certs])
    context = trust.validation_context(
        chain=chain, at=at, crls=_fetched_crls(trust, [cert, *chain])
    )
    validator = CertificateValidator(
        to_asn1(cert),
        intermediate_certs=[to_asn1(c) for c in chain],
        validation_context=context,
    )
    try:
        _aio.run(validator.async_validate_usage(key_usage={"non_repudiation"}))
    except cv_errors.RevokedError:
        raise SignerRefused(
            SignerRefused.REVOKED, _("The certificate has been revoked by its authority.")
        ) from None
    except (cv_errors.InsufficientRevinfoError, cv_errors.CRLValidationError):
        raise SignerRefused(
            SignerRefused.REVOCATION_UNKNOWN,
            _("The certificate's revocation list could not be obtained; try again later."),
        ) from None
    except cv_errors.PathBuildingError:
        raise SignerRefused(
            SignerRefused.UNTRUSTED,
            _("The certificate does not chain to an ICP-Brasil root."),
        ) from None
    except (cv_errors.PathValidationError, cv_errors.InvalidCertificateError) as exc:
        # An issuing CA expired or revoked, a bad signature in the chain …
        if "revo" in str(exc).lower():
            raise SignerRefused(
                SignerRefused.REVOCATION_UNKNOWN,
                _("The certificate's revocation status could not be established."),
            ) from None
        raise SignerRefused(
            SignerRefused.UNTRUSTED,
            _("The certificate chain is not valid: %(error)s") % {"error": exc},
        ) from None
    return data
