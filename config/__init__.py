"""Composition root of Cuidar: settings, Celery app, URLs, admin site, API router."""

from .celery import app as celery_app

__all__ = ["celery_app"]
