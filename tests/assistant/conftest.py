"""The assistant's tests share a clinic open on weekday mornings, Sofia switched on, and a
patient who writes on WhatsApp through Meta's signed webhook, exactly as in production:
the signed POST → stored webhook → ``message.inbound`` → the conversation → the answer,
sent to Meta (stubbed with ``responses``, the recorded send answer)."""

import hashlib
import hmac
import itertools
import json
from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
import responses
import time_machine

from clinic.messaging.assistant.models import (
    AssistantSettings,
    Conversation,
    ConversationMessage,
    MessageDirection,
)
from integrations.models import ProviderAccount
from scheduling.choices import Weekday
from tests.clinic.factories import PatientFactory, ProfessionalFactory
from tests.contract.recordings import recordings
from tests.scheduling.factories import ServiceFactory, WorkingHoursFactory

#: Wednesday 11 March 2026, 10:00 in São Paulo.
NOW = datetime(2026, 3, 11, 13, 0, tzinfo=UTC)
PHONE = "+5511987654321"
NUMBER_ID = "106540352242922"
APP_SECRET = "meta-app-secret-9d2c7b1a"
SEND_URL = f"https://graph.facebook.com/v21.0/{NUMBER_ID}/messages"

raw, recorded = recordings(__file__.replace("assistant/conftest.py", "contract/meta_cloud/x.py"))
_ids = itertools.count(1)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def meta(clinic_a):
    return ProviderAccount.objects.create(
        clinic=clinic_a,
        kind="whatsapp",
        provider="meta_cloud",
        settings={"phone_number_id": NUMBER_ID},
        credentials={
            "access_token": "EAAG-test",
            "app_secret": APP_SECRET,
            "verify_token": "verify",
        },
    )


@pytest.fixture
def sent():
    """What went to Meta's send endpoint: one recorded success per call."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(SEND_URL, json=recorded("send_response.json"))
        yield mock


@pytest.fixture
def desk(clinic_a, frozen):
    """Fisioterapia (R$ 150, Dra. Ana Souza or Dr. Bruno Lima) and Pilates (R$ 90, Ana),
    weekday mornings 08:00–12:00; Sofia on."""
    clinic_a.street, clinic_a.number, clinic_a.city, clinic_a.state = (
        "Rua das Flores",
        "100",
        "São Paulo",
        "SP",
    )
    clinic_a.phone = "+551133334444"
    clinic_a.save()
    ana = ProfessionalFactory(clinic=clinic_a, full_name="Dra. Ana Souza")
    bruno = ProfessionalFactory(clinic=clinic_a, full_name="Dr. Bruno Lima")
    fisio = ServiceFactory(
        clinic=clinic_a,
        name="Fisioterapia",
        price=Decimal("150"),
        professionals=[ana, bruno],
        duration_minutes=60,
    )
    pilates = ServiceFactory(
        clinic=clinic_a,
        name="Pilates",
        price=Decimal("90"),
        professionals=[ana],
        duration_minutes=60,
    )
    for person in (ana, bruno):
        for weekday in Weekday.values[:5]:
            WorkingHoursFactory(
                professional=person, weekday=weekday, start_time=time(8), end_time=time(12)
            )
    AssistantSettings.objects.create(
        clinic=clinic_a, enabled=True, hours_text="seg a sex, 8h às 12h"
    )
    return {"clinic": clinic_a, "ana": ana, "bruno": bruno, "fisio": fisio, "pilates": pilates}


@pytest.fixture
def patient(desk):
    return PatientFactory(clinic=desk["clinic"], full_name="Maria José Araújo", phone=PHONE)


def meta_body(text: str, phone: str) -> bytes:
    wamid = f"wamid.TEST{next(_ids):06d}"
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "551130000000",
                                "phone_number_id": NUMBER_ID,
                            },
                            "contacts": [
                                {"profile": {"name": "Contato"}, "wa_id": phone.lstrip("+")}
                            ],
                            "messages": [
                                {
                                    "from": phone.lstrip("+"),
                                    "id": wamid,
                                    "timestamp": "1773234000",
                                    "text": {"body": text},
                                    "type": "text",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body, ensure_ascii=False).encode()


@pytest.fixture
def say(client, meta, sent, django_capture_on_commit_callbacks):
    """The contact writes ``text``; returns the assistant's answer (text), or ``None``."""

    def write(text: str, *, phone: str = PHONE) -> str | None:
        body = meta_body(text, phone)
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        before = ConversationMessage.objects.filter(direction=MessageDirection.OUT).count()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/webhooks/meta_cloud/{meta.webhook_token}/",
                data=body,
                content_type="application/json",
                headers={"X-Hub-Signature-256": signature},
            )
        assert response.status_code == 200
        answers = ConversationMessage.objects.filter(direction=MessageDirection.OUT).order_by("pk")
        if answers.count() == before:
            return None
        return answers.last().text

    return write


def conversation_of(phone: str = PHONE) -> Conversation:
    return Conversation.objects.get(phone__in=[phone, phone.lstrip("+")])


def sent_texts(mock) -> list[str]:
    return [
        json.loads(call.request.body)["text"]["body"]
        for call in mock.calls
        if call.request.url == SEND_URL
    ]
