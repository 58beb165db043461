"""One registry of rows for the tenancy suite: ``ROWS[object_name](clinic)`` makes one row of
that model owned by ``clinic`` (with whatever it points at, in the same clinic).

Keyed by ``model._meta.object_name``, never by app label: models move between sub-apps
(``clinic.messaging``, ``clinic.portal`` …) and keep their class names. A model registered in
the admin, behind an API endpoint or a portal page needs an entry here, or the coverage tests
(``test_coverage.py``) fail naming it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.utils import timezone

from tests.billing.factories import InvoiceFactory, PackageFactory, PaymentFactory
from tests.clinic.factories import (
    ConsentFactory,
    MembershipFactory,
    PatientFactory,
    ProfessionalFactory,
    RoomFactory,
    UserFactory,
)
from tests.scheduling.factories import (
    AppointmentFactory,
    ClinicClosureFactory,
    ServiceFactory,
    TimeOffFactory,
    WorkingHoursFactory,
)

_serial = itertools.count(1)


def model(object_name: str):
    """The model class named ``object_name``, whichever app (or sub-app) holds it today."""
    found = [m for m in apps.get_models() if m._meta.object_name == object_name]
    assert len(found) == 1, f"{object_name}: {len(found)} models have this name"
    return found[0]


def _tag(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


def _clinic(clinic):
    return clinic


def _patient(clinic):
    return PatientFactory(clinic=clinic)


def _conversation(clinic):
    conversation = model("Conversation").objects.create(
        clinic=clinic,
        channel="whatsapp",
        phone=f"+55119{next(_serial):08d}",
        patient=PatientFactory(clinic=clinic),
    )
    model("ConversationMessage").objects.create(
        clinic=clinic,
        conversation=conversation,
        direction="in",
        author="contact",
        text=_tag("conversation-text"),
    )
    return conversation


def _assistant_settings(clinic):
    return model("AssistantSettings").objects.create(clinic=clinic, hours_text=_tag("hours"))


def _appointment(clinic):
    professional = ProfessionalFactory(clinic=clinic)
    service = ServiceFactory(clinic=clinic, professionals=[professional])
    return AppointmentFactory(
        clinic=clinic,
        service=service,
        professional=professional,
        patient=PatientFactory(clinic=clinic),
        start=timezone.now() + timedelta(days=2),
    )


def _api_key(clinic):
    from clinic.partner_api.keys import api_key_create

    key, _secret = api_key_create(clinic=clinic, name=_tag("Parceiro"), scopes=["patients:read"])
    return key


def _api_request_log(clinic):
    return model("ApiRequestLog").objects.create(
        clinic=clinic, method="GET", path=f"/api/v1/{_tag('patients')}/", status=200, latency_ms=5
    )


def _audit_entry(clinic):
    patient = PatientFactory(clinic=clinic)
    return model("AuditEntry").objects.create(
        clinic=clinic,
        actor_kind="staff",
        actor_label=_tag("auditor"),
        action="read",
        patient_id=patient.pk,
        object_id=str(patient.pk),
    )


def _message_template(clinic):
    return model("MessageTemplate").objects.create(
        clinic=clinic, name=_tag("modelo"), body="Olá {{ paciente }}"
    )


def _outbound_message(clinic):
    patient = PatientFactory(clinic=clinic)
    return model("OutboundMessage").objects.create(
        clinic=clinic,
        patient=patient,
        template="lembrete_consulta",
        purpose="utility",
        idempotency_key=_tag("tenancy"),
        channel="whatsapp",
        to_address=patient.phone,
        body="Lembrete da consulta",
    )


def _received_message(clinic):
    patient = PatientFactory(clinic=clinic)
    return model("ReceivedMessage").objects.create(
        clinic=clinic,
        patient=patient,
        channel="whatsapp",
        from_address=patient.phone,
        text="Confirmo",
        source_key=_tag("tenancy"),
    )


def _clinical_template(clinic):
    from clinic.records.template_services import new_version

    template = model("ClinicalTemplate").objects.create(
        clinic=clinic, name=_tag("Modelo clínico"), kind="anamnesis", specialty="other"
    )
    new_version(template, [{"type": "text", "key": "queixa", "label": "Queixa"}])
    return template


def _privacy_request(clinic):
    return model("PrivacyRequest").objects.create(
        clinic=clinic, patient=PatientFactory(clinic=clinic), kind="deletion"
    )


def _portal_session(clinic):
    from clinic.portal import sessions

    _token, session = sessions.session_start(patient=PatientFactory(clinic=clinic))
    return session


def _security_policy(clinic):
    from clinic.accounts.models import SecurityPolicy

    return SecurityPolicy.objects.get_or_create(clinic=clinic)[0]


def _invitation(clinic):
    from clinic.accounts.models import Invitation

    tag = _tag("convite")
    return Invitation.objects.create(
        clinic=clinic,
        email=f"{tag}@example.com",
        full_name=f"Convidada {tag}",
        cpf="52998224725",
        role="receptionist",
        token_hash=tag.ljust(64, "0")[:64],
        invited_by=MembershipFactory(clinic=clinic).user,
        expires_at=timezone.now() + timedelta(days=3),
    )


def _membership(clinic):
    return MembershipFactory(clinic=clinic)


def _event(clinic):
    return model("Event").objects.create(
        clinic=clinic, event_type="patient.created", payload={"patient_id": 1}
    )


def _dead_letter(clinic):
    event = _event(clinic)
    return model("DeadLetter").objects.create(
        clinic=clinic,
        event=event,
        event_type=event.event_type,
        subscriber=_tag("subscriber"),
        status="dead",  # what the dead-letter list shows
    )


def _provider_account(clinic):
    return model("ProviderAccount").objects.create(
        clinic=clinic, kind="sms", provider="console", label=_tag("Conta")
    )


def _external_call(clinic):
    return model("ExternalCall").objects.create(
        clinic=clinic,
        provider="console",
        operation="send",
        method="POST",
        host="api.example",
        status_code=200,
        succeeded=True,
        correlation_id=_tag("corr"),
    )


def _console_record(clinic):
    return model("ConsoleRecord").objects.create(
        clinic=clinic,
        kind="sms",
        provider="console",
        operation="send",
        recipient=f"+55119{next(_serial):08d}",
        payload={"text": "Oi"},
    )


def _provider_usage(clinic):
    return model("ProviderUsage").objects.create(
        clinic=clinic,
        kind="llm",
        provider="console",
        model_name=_tag("modelo"),
        operation="extract",
        tokens_in=100,
        tokens_out=20,
        cost=Decimal("0.000500"),
    )


def _knowledge_entry(clinic):
    return model("KnowledgeEntry").objects.create(
        clinic=clinic, category="faq", title=_tag("Vocês aceitam convênio?"), body="Não."
    )


def _inbound_webhook(clinic):
    return model("InboundWebhook").objects.create(
        clinic=clinic,
        provider="console",
        headers={},
        body=b"{}",
        content_type="application/json",
        dedupe_key=_tag("console"),
    )


def _webhook_subscription(clinic):
    from integrations.subscriptions import subscription_create

    return subscription_create(
        clinic=clinic,
        name=_tag("Lab"),
        url="https://lab.example.com/hook",
        event_types=["patient.created"],
    )


def _waitlist_entry(clinic):
    today = timezone.localdate()
    return model("WaitlistEntry").objects.create(
        clinic=clinic,
        patient=PatientFactory(clinic=clinic),
        service=ServiceFactory(clinic=clinic),
        earliest_date=today,
        latest_date=today + timedelta(days=30),
    )


def _calendar_feed(clinic):
    return model("CalendarFeed").objects.create(
        clinic=clinic, professional=ProfessionalFactory(clinic=clinic)
    )


def _patient_package(clinic):
    now = timezone.now()
    package = PackageFactory(clinic=clinic)
    return model("PatientPackage").objects.create(
        clinic=clinic,
        patient=PatientFactory(clinic=clinic),
        package=package,
        sessions_total=10,
        price=Decimal("900.00"),
        purchased_at=now,
        expires_at=now + timedelta(days=180),
    )


def _invoice(clinic):
    return InvoiceFactory(payment=PaymentFactory(clinic=clinic, status="paid"))


def _expense(clinic):
    from tests.billing.factories import ExpenseFactory

    return ExpenseFactory(clinic=clinic)


def _lead(clinic):
    from crm.models import Lead

    return Lead.objects.create(
        clinic=clinic, name=_tag("Lead"), email=f"{_tag('lead')}@example.com", phone_key=""
    )


def _lead_alert(clinic):
    return model("LeadAlert").objects.create(
        clinic=clinic, lead=_lead(clinic), user=MembershipFactory(clinic=clinic).user
    )


def _segment(clinic):
    return model("Segment").objects.create(clinic=clinic, name=_tag("Segmento"))


def _campaign(clinic):
    return model("Campaign").objects.create(
        clinic=clinic, name=_tag("Campanha"), kind="retention", segment=_segment(clinic)
    )


def _marketing_settings(clinic):
    from crm.services import marketing_settings

    return marketing_settings(clinic)


def _marketing_spend(clinic):
    return model("MarketingSpend").objects.create(
        clinic=clinic,
        source="instagram",
        month=timezone.localdate().replace(day=1) - timedelta(days=31 * next(_serial) % 3000),
        amount=Decimal("500.00"),
    )


def _loyalty_program(clinic):
    from loyalty.services import program_for

    return program_for(clinic)


def _loyalty_account(clinic):
    from loyalty.services import account_for

    return account_for(PatientFactory(clinic=clinic))


def _points_entry(clinic):
    from django.db import transaction

    from loyalty import services

    with transaction.atomic():
        account = services.account_lock(_loyalty_account(clinic))
        return services.entry_add(
            account, kind="earn", points=100, reason=_tag("earn"), source_key=_tag("key")
        )


def _reward(clinic):
    return model("Reward").objects.create(
        clinic=clinic, name=_tag("Reward"), points_cost=10, value=Decimal("5.00")
    )


def _redemption(clinic):
    entry = _points_entry(clinic)
    return model("Redemption").objects.create(
        clinic=clinic, account=entry.account, reward=_reward(clinic), points=10, value=5,
        channel="desk",
    )  # fmt: skip


def _referral(clinic):
    return model("Referral").objects.create(
        clinic=clinic,
        referrer=_loyalty_account(clinic),
        referred_patient=PatientFactory(clinic=clinic),
    )


def _encounter(clinic):
    from clinic.records.models import Encounter

    return Encounter.objects.create(
        clinic=clinic,
        patient=PatientFactory(clinic=clinic),
        professional=ProfessionalFactory(clinic=clinic),
        created_by=UserFactory(),
        service_name=_tag("Consulta"),
    )


def _record_entry(clinic):
    from clinic.records.models import Entry

    encounter = _encounter(clinic)
    return Entry.objects.create(
        clinic=clinic,
        encounter=encounter,
        patient=encounter.patient,
        kind="plan",
        content={"text": _tag("plano")},
        author=encounter.created_by,
        author_name="Dra. X",
    )


def _record_attachment(clinic):
    from django.core.files.base import ContentFile

    from clinic.records.models import Attachment

    encounter = _encounter(clinic)
    return Attachment.objects.create(
        clinic=clinic,
        encounter=encounter,
        patient=encounter.patient,
        file=ContentFile(b"%PDF-1.4 x", name="x.pdf"),
        original_name=_tag("exame") + ".pdf",
        content_type="application/pdf",
        size=10,
        sha256="0" * 64,
        uploaded_by=encounter.created_by,
    )


def _break_glass(clinic):
    from clinic.records.models import BreakGlass

    return BreakGlass.objects.create(
        clinic=clinic,
        user=UserFactory(),
        patient=PatientFactory(clinic=clinic),
        reason=_tag("emergência"),
        expires_at=timezone.now() + timedelta(hours=4),
    )


ROWS: dict[str, Callable] = {
    # tenancy and people
    "Clinic": _clinic,
    "Membership": _membership,
    "SecurityPolicy": _security_policy,
    "Invitation": _invitation,
    "Patient": _patient,
    "Professional": lambda clinic: ProfessionalFactory(clinic=clinic),
    "Room": lambda clinic: RoomFactory(clinic=clinic),
    "ClinicalTemplate": _clinical_template,
    "Consent": lambda clinic: ConsentFactory(patient=PatientFactory(clinic=clinic)),
    "AuditEntry": _audit_entry,
    "PrivacyRequest": _privacy_request,
    # partner API framework
    "ApiKey": _api_key,
    "ApiRequestLog": _api_request_log,
    # messaging
    "MessageTemplate": _message_template,
    "OutboundMessage": _outbound_message,
    "ReceivedMessage": _received_message,
    "Conversation": _conversation,
    "AssistantSettings": _assistant_settings,
    "KnowledgeEntry": _knowledge_entry,
    # portal
    "PortalSession": _portal_session,
    # integrations
    "Event": _event,
    "DeadLetter": _dead_letter,
    "ProviderAccount": _provider_account,
    "ExternalCall": _external_call,
    "ConsoleRecord": _console_record,
    "ProviderUsage": _provider_usage,
    "InboundWebhook": _inbound_webhook,
    "WebhookSubscription": _webhook_subscription,
    # scheduling
    "Service": lambda clinic: ServiceFactory(clinic=clinic),
    "WorkingHours": lambda clinic: WorkingHoursFactory(
        professional=ProfessionalFactory(clinic=clinic)
    ),
    "TimeOff": lambda clinic: TimeOffFactory(
        professional=ProfessionalFactory(clinic=clinic), start=timezone.now() + timedelta(days=5)
    ),
    "ClinicClosure": lambda clinic: ClinicClosureFactory(
        clinic=clinic, end_date=timezone.localdate() + timedelta(days=10)
    ),
    "Appointment": _appointment,
    "WaitlistEntry": _waitlist_entry,
    "CalendarFeed": _calendar_feed,
    # billing
    "Package": lambda clinic: PackageFactory(clinic=clinic),
    "PatientPackage": _patient_package,
    "Payment": lambda clinic: PaymentFactory(clinic=clinic),
    "Invoice": _invoice,
    "FinancialTransaction": _expense,
    # crm
    "Lead": _lead,
    "LeadAlert": _lead_alert,
    "Segment": _segment,
    "Campaign": _campaign,
    "MarketingSettings": _marketing_settings,
    "MarketingSpend": _marketing_spend,
    # loyalty
    "LoyaltyProgram": _loyalty_program,
    "LoyaltyAccount": _loyalty_account,
    "PointsEntry": _points_entry,
    "Reward": _reward,
    "Redemption": _redemption,
    "Referral": _referral,
    # clinic.records (the clinical record)
    "Encounter": _encounter,
    "Entry": _record_entry,
    "Attachment": _record_attachment,
    "BreakGlass": _break_glass,
}


def make(object_name: str, clinic):
    """One row of ``object_name`` owned by ``clinic``."""
    return ROWS[object_name](clinic)


def clinic_owned(model) -> bool:
    """Whether ``model``'s rows belong to a clinic (a ``clinic`` foreign key to Clinic)."""
    field = next((f for f in model._meta.get_fields() if f.name == "clinic"), None)
    return bool(field and field.is_relation and field.related_model._meta.object_name == "Clinic")


def clinic_of(obj) -> int | None:
    """The id of the clinic a row belongs to (a Clinic is its own)."""
    if obj._meta.object_name == "Clinic":
        return obj.pk
    return getattr(obj, "clinic_id", None)
