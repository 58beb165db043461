"""ICP-Brasil identifiers the signing layer writes and reads, each with its source.

Kept apart so the clinical documents (clinic.records) and the tests name the same values.
"""

from __future__ import annotations

import enum

from django.conf import settings

# --- Signature policy (DOC-ICP-15.03) --------------------------------------------------------
#: PAdES AD-RB ("Referência Básica"), version 1.1 of the policy: the one the ITI validator and
#: the health-document implementers use. Newer versions exist (…11.1.2, …11.1.3, 2025).
AD_RB_POLICY_OID = "2.16.76.1.7.1.11.1.1"
AD_RB_POLICY_URI = "http://politicas.icpbrasil.gov.br/PA_PAdES_AD_RB_v1_1.der"
#: SigPolicyHash: the ``signPolicyHash`` (SHA-256) that PA_PAdES_AD_RB_v1_1.der carries in
#: itself, which is what a signature must quote (SERPRO's demoiselle/signer,
#: ``IdSigningPolicy``, takes it from the same field; the file ships in its policy-engine
#: artifacts). For reference, SHA-256 of the whole .der file is 95752d26…d63b9cb1 — that is
#: NOT the value to quote. Overridable (``CUIDAR_SIGNATURE_POLICY_HASH``, hex) should
#: ICP-Brasil republish the policy.
AD_RB_POLICY_HASH_SHA256 = "44fc5816eb2d705d8c8f022a7f93b3fb49edfae1a7b9149ef6fab833e9bb63f8"


def policy_hash() -> bytes:
    return bytes.fromhex(
        getattr(settings, "CUIDAR_SIGNATURE_POLICY_HASH", "") or AD_RB_POLICY_HASH_SHA256
    )


def policy_oid() -> str:
    return getattr(settings, "CUIDAR_SIGNATURE_POLICY_OID", "") or AD_RB_POLICY_OID


def policy_uri() -> str:
    return getattr(settings, "CUIDAR_SIGNATURE_POLICY_URI", "") or AD_RB_POLICY_URI


# --- Signer identity (DOC-ICP-04) -----------------------------------------------------------
#: subjectAltName otherName of a natural person's certificate: birth date (ddmmyyyy, 8),
#: CPF (11), NIS (11), RG (15), RG issuer and UF (up to 10). Absent fields are zeros.
OTHERNAME_PERSON_DATA = "2.16.76.1.3.1"


# --- Health-document metadata read by the ITI validator -------------------------------------
class DocumentType(enum.Enum):
    """``2.16.76.1.12.1.x`` — the document type the validator reads (values as used by
    health-document implementers such as Lacuna's PKI suite; CLINICAL.md)."""

    PRESCRIPTION = "2.16.76.1.12.1.1"
    MEDICAL_CERTIFICATE = "2.16.76.1.12.1.2"
    EXAM_REQUEST = "2.16.76.1.12.1.3"
    LABORATORY_REPORT = "2.16.76.1.12.1.4"
    DISCHARGE_SUMMARY = "2.16.76.1.12.1.5"
    ENCOUNTER_RECORD = "2.16.76.1.12.1.6"
    DISPENSING = "2.16.76.1.12.1.7"
    VACCINATION = "2.16.76.1.12.1.8"
    MEDICAL_REPORT = "2.16.76.1.12.1.11"


class Council(enum.Enum):
    """Professional council: the OIDs of (registration number, state)."""

    CRM = ("2.16.76.1.4.2.2.1", "2.16.76.1.4.2.2.2")  # physicians
    CRF = ("2.16.76.1.4.2.3.1", "2.16.76.1.4.2.3.2")  # pharmacists

    @property
    def number_oid(self) -> str:
        return self.value[0]

    @property
    def state_oid(self) -> str:
        return self.value[1]


BRAZILIAN_STATES = frozenset(
    [
        "AC",
        "AL",
        "AP",
        "AM",
        "BA",
        "CE",
        "DF",
        "ES",
        "GO",
        "MA",
        "MT",
        "MS",
        "MG",
        "PA",
        "PB",
        "PR",
        "PE",
        "PI",
        "RJ",
        "RN",
        "RS",
        "RO",
        "RR",
        "SC",
        "SP",
        "SE",
        "TO",
    ]
)
