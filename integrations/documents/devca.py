"""A development PKI shaped like ICP-Brasil: root → issuing CA → natural-person certificate
with the CPF in subjectAltName otherName 2.16.76.1.3.1, CRLs from both CAs.

For tests, the benchmark and the console cloud-signing provider only. Nothing here is
trusted unless a caller passes ``DevPKI.root`` as a trust root; its names say "DEV" so a
document signed with it can never pass for a real one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from .policy import OTHERNAME_PERSON_DATA

KEY_SIZE = 2048
CRL_URL = "http://dev-pki.cuidar.invalid/{name}.crl"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _name(cn: str, ou: str = "Cuidar DEV PKI") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ICP-Brasil DEV (not ICP-Brasil)"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def person_data(*, cpf: str, birth_date: str = "01011980", nis: str = "", rg: str = "") -> bytes:
    """The otherName 2.16.76.1.3.1 value (DOC-ICP-04): ddmmyyyy + CPF + NIS + RG + issuer,
    absent fields as zeros, DER OCTET STRING."""
    text = birth_date + cpf.rjust(11, "0") + (nis or "0" * 11) + (rg or "0" * 15) + "SSPSP"
    raw = text.encode("ascii")
    return b"\x04" + bytes([len(raw)]) + raw


@dataclass
class Issued:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass
class DevPKI:
    root: Issued
    ca: Issued
    revoked: list[x509.Certificate] = field(default_factory=list)

    @classmethod
    def create(cls, *, now: dt.datetime | None = None) -> DevPKI:
        now = now or dt.datetime.now(dt.UTC)
        root_key, ca_key = _key(), _key()
        root_name = _name("AC Raiz DEV Cuidar v1")
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=3650))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False
            )
            .sign(root_key, hashes.SHA256())
        )
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("AC DEV Cuidar Pessoa Fisica v1"))
            .issuer_name(root_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1800))
            .not_valid_after(now + dt.timedelta(days=1800))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(_crl_dp("root"), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                critical=False,
            )
            .sign(root_key, hashes.SHA256())
        )
        return cls(root=Issued(root, root_key), ca=Issued(ca, ca_key))

    def issue_person(
        self,
        *,
        name: str,
        cpf: str,
        birth_date: str = "01011980",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        non_repudiation: bool = True,
        key: rsa.RSAPrivateKey | None = None,
    ) -> Issued:
        """An e-CPF A1-like certificate: ``CN=NAME:CPF``, CPF inside 2.16.76.1.3.1."""
        now = dt.datetime.now(dt.UTC)
        key = key or _key()
        san = x509.SubjectAlternativeName(
            [
                x509.OtherName(
                    x509.ObjectIdentifier(OTHERNAME_PERSON_DATA),
                    person_data(cpf=cpf, birth_date=birth_date),
                ),
                x509.RFC822Name("dev@cuidar.invalid"),
            ]
        )
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=non_repudiation,
            key_encipherment=True,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name}:{cpf}", ou="Pessoa Fisica A1 DEV"))
            .issuer_name(self.ca.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(days=30))
            .not_valid_after(not_after or now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(san, critical=False)
            .add_extension(_crl_dp("ca"), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.key.public_key()),
                critical=False,
            )
            .sign(self.ca.key, hashes.SHA256())
        )
        return Issued(cert, key)

    def revoke(self, certificate: x509.Certificate) -> None:
        self.revoked.append(certificate)

    def crls(self, *, now: dt.datetime | None = None) -> list[x509.CertificateRevocationList]:
        """Fresh CRLs of the root (for the issuing CA) and of the issuing CA (for people)."""
        now = now or dt.datetime.now(dt.UTC)
        return [
            _crl(
                self.root,
                [c for c in self.revoked if c.issuer == self.root.certificate.subject],
                now,
            ),
            _crl(
                self.ca, [c for c in self.revoked if c.issuer == self.ca.certificate.subject], now
            ),
        ]

    def pkcs12(self, person: Issued, password: str, *, friendly_name: str = "A1") -> bytes:
        """The person's key, certificate and chain as an A1 PKCS#12 file."""
        return pkcs12.serialize_key_and_certificates(
            friendly_name.encode(),
            person.key,
            person.certificate,
            [self.ca.certificate, self.root.certificate],
            serialization.BestAvailableEncryption(password.encode()),
        )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _crl_dp(name: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(CRL_URL.format(name=name))],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _crl(issuer: Issued, revoked: list[x509.Certificate], now: dt.datetime):
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - dt.timedelta(minutes=1))
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256())
