"""What messaging does when messages come in (domain event subscribers, and anymail's
tracking signal, connected in ``apps.MessagingConfig.ready``).

``integrations`` publishes ``message.inbound`` and ``message.status`` with ids only; the
text and the sender are read here from the stored webhook, under this app's rules.

The subscribers keep the names they had in ``clinic.handlers`` before issue 18: deliveries
waiting in the outbox (and dead letters retried later) name their subscriber.
"""

from clinic.models import Clinic
from integrations.events import subscriber
from integrations.inbound import webhook_item

from .models import OutboundMessage
from .receipts import message_status_apply
from .replies import message_receive


@subscriber("message.inbound", name="clinic.handlers.receive_patient_message")
def receive_patient_message(event, delivery):
    """Store the patient's message and act on it (opt-out, confirm, cancel …)."""
    payload = event.payload
    found = webhook_item(payload["inbound_webhook_id"], payload["item"])
    if found is None:
        return  # the stored webhook is gone (retention): nothing left to act on
    webhook, item = found
    message_receive(
        clinic=Clinic.objects.get(pk=event.clinic_id),
        channel=webhook.account.kind,
        item=item,
        provider=webhook.provider,
        source_key=f"{webhook.pk}:{payload['item']}",
    )


@subscriber("message.status", name="clinic.handlers.apply_message_receipt")
def apply_message_receipt(event, delivery):
    """A delivery or read receipt moves our message forward (never back)."""
    payload = event.payload
    found = webhook_item(payload["inbound_webhook_id"], payload["item"])
    at = error = None
    if found is not None:
        _webhook, item = found
        at, error = item.at, item.error
    message_status_apply(
        clinic=event.clinic_id,
        provider=payload["provider"],
        provider_message_id=payload["provider_message_id"],
        status=payload["status"],
        at=at,
        error=error or "",
    )


def anymail_tracking_received(sender, event, esp_name, **kwargs):
    """anymail's tracking signal (ESP webhooks: delivered, opened, bounced …) moves the
    e-mail we sent forward. ESP message ids are unique, so the message names its clinic."""
    from integrations.email.anymail_esp import NAME, status_update_from_tracking

    update = status_update_from_tracking(event)
    if update is None:
        return
    clinic_id = (
        OutboundMessage.objects.filter(
            provider=NAME, provider_message_id=update.provider_message_id
        )
        .values_list("clinic_id", flat=True)
        .first()
    )
    if clinic_id is None:
        return
    message_status_apply(
        clinic=clinic_id,
        provider=NAME,
        provider_message_id=update.provider_message_id,
        status=update.status,
        at=update.at,
        error=update.error,
    )
