"""``/health/``: is this instance able to serve? Database, cache, broker and Redis, each
checked.

200 with ``{"status": "ok", ...}`` when all are up; 503 naming the failing part otherwise.
``"redis"`` says ``ok``, ``down`` or ``not_configured`` (no ``REDIS_URL``: rate limits and
circuit breakers are kept per process — allowed, but ``check --deploy`` warns); Redis down
is a failure, not a silent fall-back to per-process counters.
Used by load balancers, compose health checks and the CI smoke test. It reveals no data and
no configuration beyond each check's status.
"""

import hmac
import logging
import time
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key, value = f"health:{uuid.uuid4().hex}", "ok"
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("cache did not return what was stored")
    cache.delete(key)


def check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        # The filesystem transport "connects" without touching disk: make sure the queue
        # folder is really there and writable.
        folder = (app.conf.broker_transport_options or {}).get("data_folder_in")
        if folder:
            import os

            if not os.access(folder, os.W_OK):
                raise RuntimeError("broker folder is not writable")


class NotConfigured(Exception):
    """The part is optional and not set up here."""


def check_redis() -> None:
    """The shared state's Redis (throttles, breakers, key cache): one PING."""
    from clinic.kernel.redis import state_client

    client = state_client()
    if client is None:
        raise NotConfigured
    client.ping()


CHECKS = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "redis": check_redis,
}


@never_cache
@require_GET
def health(request):
    results = {}
    failing = []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except NotConfigured:
            results[name] = {"status": "not_configured"}
        except Exception as exc:
            logger.warning("health check %s failed: %s", name, exc.__class__.__name__)
            results[name] = {"status": "error", "error": exc.__class__.__name__}
            failing.append(name)
        else:
            results[name] = {"status": "ok"}
        results[name]["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    redis = {"ok": "ok", "not_configured": "not_configured"}.get(results["redis"]["status"], "down")
    body = {
        "status": "error" if failing else "ok",
        "failing": failing,
        "redis": redis,
        "checks": results,
    }
    return JsonResponse(body, status=503 if failing else 200)


@never_cache
@require_GET
def integrations(request):
    """``/health/integrations``: for signed-in staff (their clinics only; operators see
    all) or for a monitor presenting ``Authorization: Bearer <CUIDAR_HEALTH_TOKEN>``."""
    from django.conf import settings

    from clinic.kernel.tenancy import clinics_for_user
    from integrations.health import integrations_health

    token = getattr(settings, "CUIDAR_HEALTH_TOKEN", "")
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        clinic_ids = None
    elif request.user.is_authenticated and request.user.is_staff:
        clinic_ids = (
            None
            if request.user.is_superuser
            else list(clinics_for_user(request.user).values_list("pk", flat=True))
        )
    else:
        return JsonResponse(
            {"detail": "Sign in as staff or send Authorization: Bearer <health token>."},
            status=401,
        )
    report = integrations_health(clinic_ids=clinic_ids)
    return JsonResponse(report, status=503 if report["status"] == "critical" else 200)
