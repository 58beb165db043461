"""Celery tasks of the assistant: thin, they fetch by id and call one service."""

from celery import shared_task

from .models import OutStatus


@shared_task(name="messaging.conversation_reply", bind=True, acks_late=True, max_retries=5)
def conversation_reply_task(self, message_id: int) -> None:
    """Deliver one answer of a conversation; a transient failure of the whole provider chain
    retries with backoff (30 s, 60 s, 120 s …)."""
    from .delivery import conversation_message_deliver

    status = conversation_message_deliver(message_id=message_id)
    if status == OutStatus.QUEUED and not self.request.is_eager:
        raise self.retry(countdown=30 * 2**self.request.retries)


@shared_task(name="messaging.conversation_model_turn", acks_late=True)
def conversation_model_turn_task(received_id: int) -> None:
    """Answer a message the rules did not understand with the clinic's language model
    (the rules answer if it fails). Safe twice: the answer's key is the message's."""
    from .services import conversation_model_turn

    conversation_model_turn(received_id=received_id)
