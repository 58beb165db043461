"""Cuidar's own system checks (``manage.py check``; ``--deploy`` for production-only ones)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

W001 = "cuidar.W001"


@register(Tags.caches, deploy=True)
def redis_configured(app_configs=None, **kwargs):
    """Production without Redis works, but its limits and breakers do not add up."""
    if getattr(settings, "REDIS_URL", ""):
        return []
    return [
        Warning(
            "REDIS_URL is not set: the partner API's rate limits are counted per process (the "
            "real limit becomes the rate times the number of web processes), circuit breakers "
            "open per process, and the cache is local to each process.",
            hint=(
                "Set REDIS_URL=redis://host:6379/0 (compose.yaml does). /health/ and /metrics "
                "report Redis as not configured, or as down when it does not answer."
            ),
            id=W001,
        )
    ]
