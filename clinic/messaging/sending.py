"""Sending: a message is recorded (``OutboundMessage``) under a unique idempotency key, so a
job that runs twice sends once, and its delivery is enqueued after commit — the send is a
side effect, so it leaves only once the caller's transaction holds. The reminder sweeps
send many at once (:func:`messages_send_many`). Delivery itself: ``delivery``."""

from __future__ import annotations

from collections.abc import Collection

from django.db import IntegrityError, connection, transaction

from clinic.choices import ConsentPurpose
from clinic.models import Clinic, Patient
from clinic.validators import phone_format

from . import catalogue
from .models import OutboundMessage, ReceivedMessage
from .rendering import message_render, template_texts

DELIVER_QUEUE = "notifications"
#: Campaigns, reactivation and greetings go to the low-priority partner-side queue: a campaign
#: of thousands must not delay a sign-in code or a reminder on ``notifications``.
MARKETING_QUEUE = "integrations-low"


def deliver_queue(purpose: str) -> str:
    """The Celery queue a message of this purpose is delivered from."""
    return MARKETING_QUEUE if purpose == ConsentPurpose.MARKETING else DELIVER_QUEUE


@transaction.atomic
def message_send(
    *,
    clinic: Clinic,
    patient: Patient,
    template: str,
    context: dict | None = None,
    purpose: str | None = None,
    idempotency_key: str,
    channel: str = "",
    in_reply_to: ReceivedMessage | None = None,
    sent_by=None,
) -> OutboundMessage:
    """Record a message for ``patient`` and deliver it after commit.

    The idempotency key is unique: a second call with it returns the first message and sends
    nothing. A marketing template is always sent as marketing, whatever ``purpose`` says.
    ``channel`` restricts delivery to that channel (a reply goes where the patient wrote).
    """
    if patient.clinic_id != clinic.pk:
        raise ValueError("the patient belongs to another clinic")
    spec = catalogue.spec_for(template)
    if spec.purpose == ConsentPurpose.MARKETING:
        purpose = ConsentPurpose.MARKETING
    purpose = purpose or spec.purpose
    existing = OutboundMessage.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    rendered = message_render(patient=patient, template=template, context=context or {})
    message = OutboundMessage(
        clinic=clinic,
        patient=patient,
        template=template,
        purpose=purpose,
        idempotency_key=idempotency_key,
        only_channel=channel,
        subject=rendered.subject[:255],
        body=rendered.body,
        template_variables=rendered.variables,
        meta_template_name=rendered.meta_name,
        meta_language=rendered.meta_language,
        in_reply_to=in_reply_to,
        sent_by=sent_by,
    )
    try:
        # Savepoint: an overlapping run of the same job may insert the same key first.
        with transaction.atomic():
            message.save()
    except IntegrityError:
        existing = OutboundMessage.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    _deliver_on_commit(message.pk, purpose=purpose)
    return message


def _deliver_on_commit(message_id: int, *, purpose: str, countdown: float | None = None) -> None:
    def enqueue():
        from .tasks import message_deliver_task

        message_deliver_task.apply_async(
            args=[message_id], queue=deliver_queue(purpose), countdown=countdown
        )

    # robust: the message is recorded; if the broker is down the retry sweep sends it.
    transaction.on_commit(enqueue, robust=True)


# --- Many messages at once (the reminder sweeps) --------------------------------------------
#: Messages a delivery task of the bulk path sends one after the other: a slow provider
#: call (up to its 10 s timeout) delays at most this many behind it.
DELIVER_BATCH = 50


@transaction.atomic
def messages_send_many(
    *, clinic: Clinic, template: str, messages: Collection[tuple[Patient, dict, str]]
) -> int:
    """:func:`message_send` of one template to many patients of ``clinic``: ``messages`` are
    (patient, context, idempotency key). Same rows, same rules (a key already used sends
    nothing more), in a handful of queries instead of six per message: the keys already
    used are read at once, the template once, the rows inserted in one statement, and
    their deliveries enqueued after commit on one broker connection. If an overlapping run
    inserted one of the keys meanwhile, the messages are sent one by one instead. Returns
    how many messages were recorded."""
    if any(patient.clinic_id != clinic.pk for patient, _context, _key in messages):
        raise ValueError("the patient belongs to another clinic")
    spec = catalogue.spec_for(template)
    purpose = spec.purpose
    keys = [key for _patient, _context, key in messages]
    used = set(
        OutboundMessage.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    todo = [m for m in messages if m[2] not in used]
    if not todo:
        return 0
    body, subject, meta_name, meta_language = template_texts(clinic=clinic, name=template)
    common = {
        "clinic": clinic.name,
        "clinic_phone": phone_format(clinic.phone) if clinic.phone else "",
    }
    # Compiled once for the lot (``catalogue.render`` compiles per call).
    from django.template import Context

    compiled_body = catalogue.ENGINE.from_string(body)
    compiled_subject = catalogue.ENGINE.from_string(subject) if subject else None
    rows = []
    for patient, context, key in todo:
        full = {
            **common,
            "first_name": patient.first_name,
            **{k: "" if v is None else v for k, v in context.items()},
        }
        rows.append(
            {
                "patient_id": patient.pk,
                "idempotency_key": key,
                "subject": (
                    compiled_subject.render(Context(full, autoescape=False)).strip()
                    if compiled_subject
                    else ""
                )[:255],
                "body": compiled_body.render(Context(full, autoescape=False)).strip(),
                "template_variables": [str(full.get(name, "")) for name in spec.variables],
            }
        )
    try:
        # Savepoint: an overlapping run of the same job may insert one of the keys first.
        with transaction.atomic():
            ids = _messages_insert(
                OutboundMessage(
                    clinic=clinic,
                    template=template,
                    purpose=purpose,
                    meta_template_name=meta_name,
                    meta_language=meta_language,
                ),
                rows,
            )
    except IntegrityError:
        for patient, context, key in todo:
            message_send(
                clinic=clinic,
                patient=patient,
                template=template,
                context=context,
                idempotency_key=key,
            )
        return len(todo)

    def enqueue():
        from .tasks import messages_deliver_batch_task

        # One task per DELIVER_BATCH messages, not one per message: publishing costs about
        # as much as building the message. Bounded, so one slow provider call delays few.
        queue = deliver_queue(purpose)
        for start in range(0, len(ids), DELIVER_BATCH):
            messages_deliver_batch_task.apply_async(
                args=[ids[start : start + DELIVER_BATCH]], queue=queue
            )

    # robust: the messages are recorded; if the broker is down the retry sweep sends them.
    transaction.on_commit(enqueue, robust=True)
    return len(rows)


def _messages_insert(common: OutboundMessage, rows: list[dict]) -> list[int]:
    """Insert ``rows`` (field → value, the fields that differ) in one statement, every other
    column as in ``common``; returns their ids in order. ``bulk_create`` of one instance a
    row built and prepared every one of the ~30 columns of every row, a third of a
    reminder's cost; here the shared columns are prepared once."""
    meta = OutboundMessage._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    varying = {name: meta.get_field(name) for name in rows[0]}
    shared = {
        f.attname: f.get_db_prep_save(f.pre_save(common, add=True), connection)
        for f in fields
        if f.attname not in varying
    }
    columns = [f.attname for f in fields]
    values = []
    for row in rows:
        values.extend(
            varying[name].get_db_prep_save(row[name], connection)
            if name in varying
            else shared[name]
            for name in columns
        )
    quote = connection.ops.quote_name
    placeholders = f"({', '.join(['%s'] * len(columns))})"
    quoted = ", ".join(quote(f.column) for f in fields)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({quoted}) "  # noqa: S608 - our names; values are parameters
        f"VALUES {', '.join([placeholders] * len(rows))} RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return [pk for (pk,) in cursor.fetchall()]
