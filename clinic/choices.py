"""Choices of the clinic app (tenancy, people, consent)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class MembershipRole(models.TextChoices):
    RECEPTIONIST = "receptionist", _("Receptionist")
    PROFESSIONAL = "professional", _("Professional")
    MANAGER = "manager", _("Manager")
    ADMIN = "admin", _("Clinic administrator")


class ContactChannel(models.TextChoices):
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    PHONE = "phone", _("Phone call")


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    INTERSEX = "intersex", _("Intersex")
    NOT_INFORMED = "not_informed", _("Prefer not to say")


class BloodType(models.TextChoices):
    A_POS = "A+", "A+"
    A_NEG = "A-", "A-"
    B_POS = "B+", "B+"
    B_NEG = "B-", "B-"
    AB_POS = "AB+", "AB+"
    AB_NEG = "AB-", "AB-"
    O_POS = "O+", "O+"
    O_NEG = "O-", "O-"


class Council(models.TextChoices):
    """Brazilian professional councils that register health professionals."""

    CRM = "CRM", _("CRM (medicine)")
    CRP = "CRP", _("CRP (psychology)")
    CRO = "CRO", _("CRO (dentistry)")
    CREFITO = "CREFITO", _("CREFITO (physiotherapy, occupational therapy)")
    CRN = "CRN", _("CRN (nutrition)")
    COREN = "COREN", _("COREN (nursing)")
    CRFA = "CRFa", _("CRFa (speech therapy)")
    CREF = "CREF", _("CREF (physical education)")
    CRBM = "CRBM", _("CRBM (biomedicine)")
    CRF = "CRF", _("CRF (pharmacy)")
    OTHER = "other", _("Other")


class State(models.TextChoices):
    """Brazilian federative units (UF)."""

    AC = "AC", "Acre"
    AL = "AL", "Alagoas"
    AP = "AP", "Amapá"
    AM = "AM", "Amazonas"
    BA = "BA", "Bahia"
    CE = "CE", "Ceará"
    DF = "DF", "Distrito Federal"
    ES = "ES", "Espírito Santo"
    GO = "GO", "Goiás"
    MA = "MA", "Maranhão"
    MT = "MT", "Mato Grosso"
    MS = "MS", "Mato Grosso do Sul"
    MG = "MG", "Minas Gerais"
    PA = "PA", "Pará"
    PB = "PB", "Paraíba"
    PR = "PR", "Paraná"
    PE = "PE", "Pernambuco"
    PI = "PI", "Piauí"
    RJ = "RJ", "Rio de Janeiro"
    RN = "RN", "Rio Grande do Norte"
    RS = "RS", "Rio Grande do Sul"
    RO = "RO", "Rondônia"
    RR = "RR", "Roraima"
    SC = "SC", "Santa Catarina"
    SP = "SP", "São Paulo"
    SE = "SE", "Sergipe"
    TO = "TO", "Tocantins"


class BrazilTimeZone(models.TextChoices):
    """IANA zones in use in Brazil (a clinic picks its own; default São Paulo)."""

    SAO_PAULO = "America/Sao_Paulo", _("Brasília time (America/Sao_Paulo)")
    BAHIA = "America/Bahia", "America/Bahia"
    FORTALEZA = "America/Fortaleza", "America/Fortaleza"
    RECIFE = "America/Recife", "America/Recife"
    MACEIO = "America/Maceio", "America/Maceio"
    BELEM = "America/Belem", "America/Belem"
    ARAGUAINA = "America/Araguaina", "America/Araguaina"
    SANTAREM = "America/Santarem", "America/Santarem"
    MANAUS = "America/Manaus", _("Amazon time (America/Manaus)")
    CUIABA = "America/Cuiaba", "America/Cuiaba"
    CAMPO_GRANDE = "America/Campo_Grande", "America/Campo_Grande"
    PORTO_VELHO = "America/Porto_Velho", "America/Porto_Velho"
    BOA_VISTA = "America/Boa_Vista", "America/Boa_Vista"
    RIO_BRANCO = "America/Rio_Branco", _("Acre time (America/Rio_Branco)")
    NORONHA = "America/Noronha", _("Fernando de Noronha (America/Noronha)")


class ConsentPurpose(models.TextChoices):
    UTILITY = "utility", _("Service messages (reminders, confirmations)")
    MARKETING = "marketing", _("Marketing and promotions")
    DATA_SHARING = "data_sharing", _("Sharing data with partners")


class ConsentLegalBasis(models.TextChoices):
    """Legal bases of the LGPD (Lei 13.709/2018, arts. 7 and 11)."""

    CONSENT = "consent", _("Consent of the data subject")
    CONTRACT = "contract", _("Performance of a contract")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal or regulatory obligation")
    HEALTH_PROTECTION = "health_protection", _("Protection of health (art. 11, II, f)")
    LEGITIMATE_INTEREST = "legitimate_interest", _("Legitimate interest")


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", _("Granted")
    REVOKED = "revoked", _("Revoked")


class ConsentSource(models.TextChoices):
    RECEPTION = "reception", _("Reception")
    PORTAL = "portal", _("Patient portal")
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    API = "api", _("Partner API")
    IMPORT = "import", _("Data import")


class MessageStatus(models.TextChoices):
    """Where an outbound message is. Receipts only move it forward (see
    ``clinic.messaging.receipts.STATUS_RANK``): a late "delivered" never overwrites "read"."""

    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")
    NOT_SENT = "not_sent", _("Not sent (no consented channel)")
    #: The send's outcome is unknown (worker killed mid-send, provider timed out after
    #: taking it) and its template is never resent: reception checks with the patient.
    UNCERTAIN = "uncertain", _("Uncertain (may have been sent)")


class ReplyAction(models.TextChoices):
    """What the system did with a message a patient sent."""

    NONE = "none", _("Nothing: waiting for reception")
    CONFIRMED = "confirmed", _("Confirmed the appointment")
    CANCELLED = "cancelled", _("Cancelled the appointment")
    CANCEL_REFUSED = "cancel_refused", _("Cancellation refused: too late, reception alerted")
    RESCHEDULE_LINK = "reschedule_link", _("Sent a link to reschedule")
    NO_APPOINTMENT = "no_appointment", _("No upcoming appointment: answered politely")
    OPTED_OUT = "opted_out", _("Opted out of this channel")
    UNKNOWN_SENDER = "unknown_sender", _("Unknown number")
    ASSISTANT = "assistant", _("Answered by the assistant")
