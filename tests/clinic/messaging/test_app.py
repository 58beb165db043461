"""Messaging as its own sub-app (issue 18): what was stored under clinic's names before the
move still finds its code after it."""

import pytest
from django.contrib.auth.models import Permission

from clinic.messaging import handlers, tasks
from config.celery import app
from integrations.events import handler_for


@pytest.mark.parametrize(
    ("stored_name", "func"),
    [
        ("handler:clinic.handlers.receive_patient_message", handlers.receive_patient_message),
        ("handler:clinic.handlers.apply_message_receipt", handlers.apply_message_receipt),
    ],
)
def test_deliveries_queued_before_the_move_still_find_their_subscriber(stored_name, func):
    """Outbox deliveries (and dead letters retried later) name their subscriber."""
    subscriber = handler_for(stored_name)

    assert subscriber is not None
    assert subscriber.func is func


@pytest.mark.parametrize(
    ("task_name", "task"),
    [
        ("clinic.message_deliver", tasks.message_deliver_task),
        ("clinic.messages_deliver_batch", tasks.messages_deliver_batch_task),
        ("clinic.messages_retry", tasks.messages_retry_task),
        ("clinic.birthdays_greet", tasks.birthdays_greet_task),
    ],
)
def test_tasks_queued_before_the_move_still_find_their_code(task_name, task):
    """Queued tasks and django-celery-beat's rows name the task."""
    assert app.tasks[task_name].run == task.run


@pytest.mark.django_db
def test_the_permissions_are_messagings():
    """Role groups and the admin check ``messaging.*`` permissions (roles.py)."""
    codenames = set(
        Permission.objects.filter(content_type__app_label="messaging").values_list(
            "codename", flat=True
        )
    )

    assert {"view_outboundmessage", "change_receivedmessage", "add_messagetemplate"} <= codenames
    assert not Permission.objects.filter(
        content_type__app_label="clinic", codename__endswith="message"
    ).exists()
