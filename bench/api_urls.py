"""Cuidar's URLs plus ``/bench/floor``: a bare Django JSON view, the floor the partner API
is compared with (same process, middleware and database connection, no DRF, no query)."""

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as cuidar_urlpatterns


def floor(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/floor", floor), *cuidar_urlpatterns]
