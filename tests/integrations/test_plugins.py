"""Every app names its plug-ins in its AppConfig.ready() (docs/architecture.md, "Plug-in
points"): nothing is found by scanning. These tests catch the one way that goes wrong — an
app with a ``handlers`` module that its ready() forgot to import, whose subscribers would then
silently never run."""

import importlib.util
import sys

from django.apps import apps

from integrations.events import handlers_of

CUIDAR_APPS = {"config", "clinic", "scheduling", "billing", "crm", "loyalty", "integrations"}


def _apps_with(module: str) -> list[str]:
    names = []
    for config in apps.get_app_configs():
        if config.name.split(".")[0] not in CUIDAR_APPS:
            continue  # django.contrib.auth.handlers is no plug-in module of ours
        if importlib.util.find_spec(f"{config.name}.{module}") is not None:
            names.append(f"{config.name}.{module}")
    return names


def test_every_handlers_module_is_imported_when_django_starts():
    handlers = _apps_with("handlers")
    assert "scheduling.handlers" in handlers  # the walk finds them
    assert [name for name in handlers if name not in sys.modules] == []


def test_the_subscribers_of_every_app_are_registered():
    owners = {
        subscriber.func.__module__
        for event_type in ("appointment.booked", "appointment.completed", "message.inbound")
        for subscriber in handlers_of(event_type)
    }
    assert {"scheduling.handlers", "billing.handlers", "clinic.messaging.handlers"} <= owners
