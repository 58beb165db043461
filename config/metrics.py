"""Operational metrics: a snapshot taken every minute (periodic job ``metrics``) and served at
``/metrics`` in the Prometheus text format.

The snapshot gathers what an operator watches — the outbox and provider health of
``integrations.health``, the messages waiting to go out or failing, reception's unanswered
messages and today's no-shows — with bounded aggregate queries, once a minute, so a
scraper polling ``/metrics`` every few seconds costs one cache read. This module sits in
the composition root because it reads several apps.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

CACHE_KEY = "cuidar:metrics:snapshot"
#: How long a snapshot is served; after that (the job paused or stopped) ``/metrics``
#: takes one itself.
MAX_AGE = timedelta(minutes=10)


def metrics_snapshot(*, now=None) -> dict:
    """Take the snapshot, store it in the cache and return it."""
    from clinic.choices import MessageStatus
    from clinic.messaging.models import OutboundMessage, ReceivedMessage
    from integrations.health import integrations_health
    from scheduling.choices import AppointmentStatus
    from scheduling.models import Appointment

    now = now or timezone.now()
    health = integrations_health(now=now)
    hour_ago = now - timedelta(hours=1)
    messages = OutboundMessage.objects.aggregate(
        queued=Count("pk", filter=Q(status=MessageStatus.QUEUED)),
        failed_last_hour=Count(
            "pk", filter=Q(status=MessageStatus.FAILED, failed_at__gte=hour_ago)
        ),
        sent_last_hour=Count("pk", filter=Q(sent_at__gte=hour_ago)),
    )
    unanswered = ReceivedMessage.objects.filter(needs_reply=True, answered_at__isnull=True).count()
    no_shows = Appointment.objects.filter(
        status=AppointmentStatus.NO_SHOW, no_show_at__gte=now - timedelta(hours=24)
    ).count()
    snapshot = {
        "taken_at": now.isoformat(),
        "status": health["status"],
        "outbox": {name: m["value"] for name, m in health["outbox"].items()},
        "open_circuits": health["open_circuits"],
        "providers": [
            {
                "clinic_id": p["clinic_id"],
                "provider": p["provider"],
                "kind": p["kind"],
                "open": p["circuit"] != "closed",
                "success_rate": p["success_rate"],
                "p95_latency_ms": p["p95_latency_ms"],
            }
            for p in health["providers"]
        ],
        "messages": {**messages, "unanswered": unanswered},
        "no_shows_last_24h": no_shows,
        "backups": _backups(health["backups"]),
    }
    try:
        cache.set(CACHE_KEY, snapshot, timeout=int(MAX_AGE.total_seconds()))
    except Exception:  # the cache (Redis) is down: served uncached, and /metrics says so
        logger.warning("metrics snapshot not cached", exc_info=True)
    return snapshot


def _backups(report: dict) -> dict:
    """The backups' figures of ``/health/integrations`` that a monitor alerts on."""
    drill = report.get("last_drill") or {}
    return {
        "level": report["level"],
        "repositories": [
            {"name": r["name"], "type": r["type"], "age_seconds": r["age_seconds"]}
            for r in report.get("repositories", [])
        ],
        "max_age_seconds": int(report.get("max_age_hours", 0) * 3600) or None,
        "drill_rto_seconds": drill.get("rto_seconds"),
        "drill_rpo_seconds": drill.get("rpo_seconds"),
    }


def redis_state() -> tuple[int, int]:
    """``(configured, up)`` of the shared state's Redis, asked now (not from the snapshot,
    which lives in that Redis): ``(0, 0)`` without ``REDIS_URL``. Alert on ``up == 0``:
    without Redis the sample is absent."""
    from clinic.kernel.redis import state_client

    client = state_client()
    if client is None:
        return 0, 0
    try:
        client.ping()
    except Exception:
        logger.warning("metrics: Redis unavailable", exc_info=True)
        return 1, 0
    return 1, 1


def _labels(**labels) -> str:
    inner = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + inner + "}" if inner else ""


def render_prometheus(snapshot: dict, *, now=None) -> str:
    """The snapshot in the Prometheus text exposition format (version 0.0.4). Ages are
    brought up to ``now`` (the snapshot may be up to a minute old)."""
    lines: list[str] = []
    now = now or timezone.now()
    taken_at = datetime.fromisoformat(snapshot["taken_at"])
    snapshot_age = max(0, int((now - taken_at).total_seconds()))

    def gauge(name: str, help_text: str, samples: list[tuple[dict, float | int | None]]):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            if value is not None:
                lines.append(f"{name}{_labels(**labels)} {value}")

    status_value = {"ok": 0, "degraded": 1, "critical": 2}.get(snapshot["status"], 2)
    gauge("cuidar_integrations_status", "0 ok, 1 degraded, 2 critical.", [({}, status_value)])
    outbox = snapshot["outbox"]
    gauge("cuidar_outbox_pending_events", "Deliveries waiting.", [({}, outbox["pending_events"])])
    gauge(
        "cuidar_outbox_retry_backlog",
        "Deliveries failed, to retry.",
        [({}, outbox["retry_backlog"])],
    )
    gauge("cuidar_outbox_dead_letters", "Dead deliveries.", [({}, outbox["dead_letters"])])
    gauge(
        "cuidar_provider_error_rate",
        "Failed provider calls, last hour.",
        [({}, outbox["error_rate"])],
    )
    gauge(
        "cuidar_open_circuits", "Provider breakers not closed.", [({}, snapshot["open_circuits"])]
    )
    providers = snapshot["providers"]
    gauge(
        "cuidar_provider_circuit_open",
        "1 when the provider account's breaker is open or half-open.",
        [
            (
                {"clinic": p["clinic_id"], "kind": p["kind"], "provider": p["provider"]},
                int(p["open"]),
            )
            for p in providers
        ],
    )
    gauge(
        "cuidar_provider_success_rate",
        "Successful calls over calls, last hour.",
        [
            (
                {"clinic": p["clinic_id"], "kind": p["kind"], "provider": p["provider"]},
                p["success_rate"],
            )
            for p in providers
        ],
    )
    gauge(
        "cuidar_provider_p95_latency_ms",
        "95th percentile latency of calls, last hour.",
        [
            (
                {"clinic": p["clinic_id"], "kind": p["kind"], "provider": p["provider"]},
                p["p95_latency_ms"],
            )
            for p in providers
        ],
    )
    messages = snapshot["messages"]
    gauge("cuidar_messages_queued", "Messages waiting to be delivered.", [({}, messages["queued"])])
    gauge(
        "cuidar_messages_sent_last_hour",
        "Messages handed to a provider.",
        [({}, messages["sent_last_hour"])],
    )
    gauge(
        "cuidar_messages_failed_last_hour",
        "Messages that failed.",
        [({}, messages["failed_last_hour"])],
    )
    gauge(
        "cuidar_messages_unanswered",
        "Patients' messages waiting for reception.",
        [({}, messages["unanswered"])],
    )
    gauge(
        "cuidar_no_shows_last_24h",
        "Appointments marked no-show.",
        [({}, snapshot["no_shows_last_24h"])],
    )
    backups = snapshot.get("backups")
    if backups is not None:
        gauge(
            "cuidar_backup_status",
            "Backups and restore drills: 0 ok, 1 warning, 2 critical.",
            [({}, {"ok": 0, "warning": 1, "critical": 2}.get(backups["level"], 2))],
        )
        gauge(
            "cuidar_backup_age_seconds",
            "Seconds since the last successful backup into this repository (since the "
            "installation when it has none). Alert above cuidar_backup_max_age_seconds.",
            [
                ({"repository": r["name"], "type": r["type"]}, r["age_seconds"] + snapshot_age)
                for r in backups["repositories"]
            ],
        )
        gauge(
            "cuidar_backup_max_age_seconds",
            "The schedule's limit (CUIDAR_BACKUP_MAX_AGE_HOURS): older is a warning, twice "
            "as old critical.",
            [({}, backups["max_age_seconds"])],
        )
        gauge(
            "cuidar_backup_drill_rto_seconds",
            "The last restore drill's measured RTO.",
            [({}, backups["drill_rto_seconds"])],
        )
        gauge(
            "cuidar_backup_drill_rpo_seconds",
            "The last restore drill's measured RPO.",
            [({}, backups["drill_rpo_seconds"])],
        )
    if "redis" in snapshot:
        configured, up = snapshot["redis"]
        gauge(
            "cuidar_redis_configured",
            "1 when REDIS_URL is set (else rate limits and breakers are per process).",
            [({}, configured)],
        )
        gauge(
            "cuidar_redis_up",
            "1 when Redis answered this scrape, 0 when it is down (absent: not configured).",
            [({}, up if configured else None)],
        )
    return "\n".join(lines) + "\n"


@never_cache
@require_GET
def metrics(request):
    """``/metrics`` for a monitor presenting ``Authorization: Bearer <CUIDAR_HEALTH_TOKEN>``
    (or a superuser's session). Every clinic's figures: operators only."""
    token = getattr(settings, "CUIDAR_HEALTH_TOKEN", "")
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    authorised = bool(token and presented) and hmac.compare_digest(
        presented.encode(), token.encode()
    )
    if not authorised and not (request.user.is_authenticated and request.user.is_superuser):
        return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    try:
        snapshot = cache.get(CACHE_KEY)
    except Exception:  # the cache (Redis) is down: take the snapshot here
        logger.warning("metrics snapshot unreadable", exc_info=True)
        snapshot = None
    if snapshot is None:
        snapshot = metrics_snapshot()
    snapshot = {**snapshot, "redis": redis_state()}
    return HttpResponse(
        render_prometheus(snapshot), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
