"""The WhatsApp assistant's rules path (issue 24): messages handled per second by one
process, and the time from an inbound webhook to the reply queued.

Data: one clinic (two services, two professionals working weekday mornings and afternoons),
N contacts who are patients, Sofia on, the console WhatsApp provider. Each contact writes
the same seven-message conversation: a greeting, a price question, "quero marcar
fisioterapia semana que vem de manhã" (the slots are searched in the real agenda), a
professional, a slot, "sim" (booked through scheduling's services, the slot re-checked),
and thanks.

1. ``rules``: ``clinic.messaging.replies.message_receive`` — what a Celery worker runs for
   each ``message.inbound`` — in one process, each message in its own transaction, the
   reply's delivery task published to Redis after commit. Beside it, in the same run: the
   same messages with the assistant off (today's pipeline: stored, conversation, reply
   handlers, inbox) — the floor the assistant adds to — and the rules alone (normalise,
   classify, read dates) without the database.
2. ``webhook``: a POST to the console provider's webhook through Django's test client, with
   Celery eager (processing, the outbox and the subscriber run inline, as one worker would
   with no queue wait): the time from the request to the reply's row and task queued
   (p50, p95, max).

Target (issue 24): ≥ 200 messages/s per worker on the rules path, p95 webhook → reply queued
< 300 ms without an LLM. Needs PostgreSQL and Redis (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/cuidar_bench_sofia, created and migrated if missing;
Redis db 48/49). Run: ``python bench/assistant.py [N]``; prints a JSON object.
"""

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._production import bench_environment, database_create  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cuidar_bench_sofia"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/49")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/48")
os.environ.update(bench_environment(DATABASE_URL, BROKER_URL))

SCRIPT = [
    "oi, bom dia",
    "quanto custa a fisioterapia?",
    "quero marcar fisioterapia semana que vem de manhã",
    "qualquer um",
    "1",
    "sim",
    "obrigado",
]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def setup(n: int):
    import django

    database_create(DATABASE_URL)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from datetime import time as clock
    from decimal import Decimal

    from clinic.management.commands.seed_demo import cnpj_with_check_digits
    from clinic.messaging.assistant.models import AssistantSettings
    from clinic.models import Clinic, Patient, Professional
    from scheduling.models import Service, WorkingHours

    clinic = Clinic.objects.create(
        name="Clínica Bench", cnpj=cnpj_with_check_digits(str(time.time_ns())[-8:] + "0001")
    )
    people = [
        Professional.objects.create(clinic=clinic, full_name=name)
        for name in ("Dra. Ana Souza", "Dr. Bruno Lima")
    ]
    for name, price in (("Fisioterapia", "150"), ("Pilates", "90")):
        service = Service.objects.create(
            clinic=clinic,
            name=name,
            price=Decimal(price),
            duration_minutes=30,
            min_notice_minutes=0,
            max_advance_days=365,
        )
        service.professionals.set(people)
    for person in people:
        for weekday in range(5):
            for start, end in ((clock(8), clock(12)), (clock(13), clock(18))):
                WorkingHours.objects.create(
                    clinic=clinic,
                    professional=person,
                    weekday=weekday,
                    start_time=start,
                    end_time=end,
                )
    settings = AssistantSettings.objects.create(clinic=clinic, enabled=True)
    phones = [f"+55119{7000_0000 + i:08d}" for i in range(n)]
    Patient.objects.bulk_create(
        [Patient(clinic=clinic, full_name=f"Paciente {i} Bench", phone=p)
         for i, p in enumerate(phones)]
    )  # fmt: skip
    return clinic, settings, phones


def run_pipeline(clinic, phones, tag: str) -> tuple[int, float, float]:
    from django.utils import timezone

    from clinic.messaging.replies import message_receive
    from integrations.base import InboundMessage

    count = 0
    started, cpu_started = time.perf_counter(), cpu()
    # Contact after contact, each through the whole conversation.
    for phone in phones:
        for step, text in enumerate(SCRIPT):
            message_receive(
                clinic=clinic,
                channel="whatsapp",
                item=InboundMessage(
                    from_address=phone,
                    to_address="+551130000000",
                    text=text,
                    provider_message_id=f"{tag}{step}{phone}",
                    received_at=timezone.now(),
                ),
                provider="console",
                source_key=f"{tag}:{step}:{phone}",
            )
            count += 1
    return count, time.perf_counter() - started, cpu() - cpu_started


def rules_only(n: int) -> float:
    from datetime import date

    from clinic.messaging.assistant.dates import parse_when
    from clinic.messaging.assistant.intents import classify, safety_check

    started = time.perf_counter()
    for _ in range(n):
        for text in SCRIPT:
            safety_check(text)
            classify(text)
            parse_when(text, today=date(2026, 3, 11))
    return n * len(SCRIPT) / (time.perf_counter() - started)


def webhook_latency(clinic, phones) -> dict:
    from django.db.models.signals import post_save
    from django.test import Client

    from clinic.messaging.assistant.models import ConversationMessage
    from config.celery import app
    from integrations.models import ProviderAccount

    account = ProviderAccount.objects.create(clinic=clinic, kind="whatsapp", provider="console")
    app.conf.task_always_eager = True
    queued: list[float] = []

    def mark(sender, instance, created, **kwargs):
        if created and instance.direction == "out":
            queued.append(time.perf_counter())

    post_save.connect(mark, sender=ConversationMessage, dispatch_uid="bench")
    client = Client()
    latencies = []
    for step, text in enumerate(SCRIPT):
        for phone in phones:
            body = {"id": f"wamid.w{step}{phone}", "from": phone, "to": "+5511", "text": text}
            before = len(queued)
            started = time.perf_counter()
            response = client.post(
                f"/webhooks/console/{account.webhook_token}/",
                data=json.dumps(body),
                content_type="application/json",
            )
            assert response.status_code == 200, response.status_code
            if len(queued) > before:
                latencies.append((queued[before] - started) * 1000)
    latencies.sort()
    return {
        "messages": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
        "max_ms": round(latencies[-1], 1),
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    clinic, settings, phones = setup(3 * n)
    first, second, third = phones[:n], phones[n : 2 * n], phones[2 * n :]
    from clinic.messaging.assistant.models import ConversationMessage
    from scheduling.models import Appointment

    count, seconds, used = run_pipeline(clinic, first, "on")
    booked = Appointment.objects.filter(clinic=clinic).count()
    settings.enabled = False
    settings.save()
    floor_count, floor_seconds, floor_used = run_pipeline(clinic, second, "off")
    settings.enabled = True
    settings.save()
    result = {
        "contacts": n,
        "rules_path": {
            "messages": count,
            "messages_per_s": round(count / seconds, 1),
            "cpu_ms_per_message": round(used / count * 1000, 2),
            "appointments_booked": booked,
            "answers_queued": ConversationMessage.objects.filter(
                clinic=clinic, direction="out"
            ).count(),
        },
        "floor_assistant_off_same_run": {
            "messages_per_s": round(floor_count / floor_seconds, 1),
            "cpu_ms_per_message": round(floor_used / floor_count * 1000, 2),
        },
        "rules_alone_messages_per_s": round(rules_only(200), 1),
        "webhook_to_reply_queued": webhook_latency(clinic, third),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
