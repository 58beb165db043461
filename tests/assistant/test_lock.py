"""One message of a phone is handled at a time: the phone's conversation is read with a row
lock held until the message's transaction ends (PostgreSQL; SQLite serialises writers)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinic.messaging.assistant import services as conversations

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_the_phones_conversation_is_locked_while_a_message_is_handled(clinic_a):
    conversations.conversation_for(clinic=clinic_a, channel="whatsapp", phone="+5511987654321")

    with CaptureQueriesContext(connection) as captured:
        found = conversations.conversation_for(
            clinic=clinic_a, channel="whatsapp", phone="+5511987654321"
        )

    assert found.phone == "+5511987654321"
    reads = [q["sql"] for q in captured.captured_queries if "messaging_conversation" in q["sql"]]
    assert reads and reads[0].rstrip().endswith('FOR UPDATE OF "messaging_conversation"')


def test_the_same_phone_without_the_ninth_digit_is_the_same_conversation(clinic_a):
    first = conversations.conversation_for(
        clinic=clinic_a, channel="whatsapp", phone="+5511987654321"
    )

    again = conversations.conversation_for(
        clinic=clinic_a, channel="whatsapp", phone="+551187654321"
    )

    assert again.pk == first.pk
