"""How the integrations are doing: per provider account (circuit, calls, success rate, p95
latency, last error) and for the outbox (pending, retry backlog, dead letters, error rate),
each against the thresholds of DESIGN.md; and the backups (the last backup and restore
drill, their age, the drill's RTO and RPO: ``integrations.backups.services.backups_health``).
Served at ``/health/integrations`` and shown on the admin index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .backups.services import backups_health
from .choices import CircuitState, DeliveryStatus
from .models import Delivery, ExternalCall, ProviderAccount

WINDOW = timedelta(hours=1)
LAST_ERROR_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Threshold:
    warning: float
    critical: float

    def level(self, value: float) -> str:
        if value >= self.critical:
            return "critical"
        if value >= self.warning:
            return "warning"
        return "ok"


THRESHOLDS = {
    "pending_events": Threshold(100, 500),
    "retry_backlog": Threshold(50, 200),
    "dead_letters": Threshold(10, 50),
    "error_rate": Threshold(0.05, 0.15),
}
_RANK = {"ok": 0, "warning": 1, "critical": 2}


def percentile(values: list, fraction: float):
    """Nearest-rank percentile (``fraction`` 0.95 for p95); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def p95(values: list[int]) -> int | None:
    return percentile(values, 0.95)


def _account_key(account_id: int | None, provider: str) -> str:
    # Same keys as the breakers: saved accounts by id, unsaved defaults by provider name.
    return str(account_id) if account_id else f"default-{provider}"


def integrations_health(*, clinic_ids: list[int] | None = None, now=None) -> dict:
    """The health report. ``clinic_ids=None`` covers every clinic (operators); staff get
    their clinics only."""
    from .breakers import breaker_state

    now = now or timezone.now()
    calls = ExternalCall.objects.filter(created_at__gte=now - WINDOW)
    deliveries = Delivery.objects.all()
    accounts = ProviderAccount.objects.filter(enabled=True)
    if clinic_ids is not None:
        calls = calls.filter(clinic_id__in=clinic_ids)
        deliveries = deliveries.filter(clinic_id__in=clinic_ids)
        accounts = accounts.filter(clinic_id__in=clinic_ids)

    rows: dict[tuple[int | None, str], dict] = {}

    def row(clinic_id, account_id, provider, kind="", label=""):
        key = (clinic_id, _account_key(account_id, provider))
        if key not in rows:
            rows[key] = {
                "clinic_id": clinic_id,
                "account_id": account_id,
                "provider": provider,
                "kind": kind,
                "label": label,
                "latencies": [],
                "calls": 0,
                "failures": 0,
                "last_error": None,
                "last_error_at": None,
            }
        return rows[key]

    for account in accounts.only("pk", "clinic_id", "provider", "kind", "label"):
        row(account.clinic_id, account.pk, account.provider, account.kind, str(account))
    for clinic_id, account_id, provider, latency, ok in calls.values_list(
        "clinic_id", "account_id", "provider", "latency_ms", "succeeded"
    ):
        r = row(clinic_id, account_id, provider)
        r["calls"] += 1
        r["latencies"].append(latency)
        r["failures"] += 0 if ok else 1
    recent_errors = ExternalCall.objects.filter(
        succeeded=False, created_at__gte=now - LAST_ERROR_WINDOW
    )
    if clinic_ids is not None:
        recent_errors = recent_errors.filter(clinic_id__in=clinic_ids)
    for clinic_id, account_id, provider, error_class, message, at in recent_errors.order_by(
        "-created_at"
    ).values_list(
        "clinic_id", "account_id", "provider", "error_class", "error_message", "created_at"
    )[:1000]:
        key = (clinic_id, _account_key(account_id, provider))
        if key in rows and rows[key]["last_error"] is None:
            rows[key]["last_error"] = f"{error_class}: {message}".strip(": ")
            rows[key]["last_error_at"] = at.isoformat()

    providers = []
    total_calls = total_failures = 0
    open_circuits = 0
    for (clinic_id, account_key), r in sorted(
        rows.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])
    ):
        state = breaker_state(clinic_id=clinic_id, account_key=account_key)
        open_circuits += state != CircuitState.CLOSED
        total_calls += r["calls"]
        total_failures += r["failures"]
        providers.append(
            {
                "clinic_id": clinic_id,
                "account_id": r["account_id"],
                "provider": r["provider"],
                "kind": r["kind"],
                "label": r["label"],
                "circuit": state,
                "calls_last_hour": r["calls"],
                "success_rate": (
                    round((r["calls"] - r["failures"]) / r["calls"], 4) if r["calls"] else None
                ),
                "p95_latency_ms": p95(r["latencies"]),
                "last_error": r["last_error"],
                "last_error_at": r["last_error_at"],
            }
        )

    counts = deliveries.aggregate(
        pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)),
        retry=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
        dead=Count("pk", filter=Q(status=DeliveryStatus.DEAD)),
    )
    error_rate = round(total_failures / total_calls, 4) if total_calls else 0.0
    measures = {
        "pending_events": counts["pending"],
        "retry_backlog": counts["retry"],
        "dead_letters": counts["dead"],
        "error_rate": error_rate,
    }
    outbox = {
        name: {
            "value": value,
            "warning": THRESHOLDS[name].warning,
            "critical": THRESHOLDS[name].critical,
            "level": THRESHOLDS[name].level(value),
        }
        for name, value in measures.items()
    }
    worst = max((m["level"] for m in outbox.values()), key=_RANK.__getitem__)
    if worst == "ok" and open_circuits:
        worst = "warning"  # a provider is down but its chain still has others
    # Backups and restore drills (issue 27): a late or failed one is an alert here too.
    backups = backups_health(now=now)
    worst = max(worst, backups["level"], key=_RANK.__getitem__)
    status = {"ok": "ok", "warning": "degraded", "critical": "critical"}[worst]
    return {
        "status": status,
        "checked_at": now.isoformat(),
        "window_seconds": int(WINDOW.total_seconds()),
        "outbox": outbox,
        "open_circuits": open_circuits,
        "providers": providers,
        "backups": backups,
    }
