"""Inbound webhook routes, mounted under ``/webhooks/`` by ``config/urls.py``.

``<token>`` is the provider account's unguessable ``webhook_token`` (it identifies the
account, and so the clinic). Some providers call one URL per event family, so anything
after the token is passed on as a sub-path (e.g. ``/webhooks/zapi/<token>/status``).
"""

from django.urls import path

from .webhooks import webhook_receive

app_name = "webhooks"

urlpatterns = [
    path("<slug:provider>/<str:token>/", webhook_receive, name="receive"),
    path("<slug:provider>/<str:token>/<path:subpath>", webhook_receive, name="receive-subpath"),
]
