from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = _("Scheduling")

    def ready(self):
        # Cached availability answers are dropped when what they were computed from changes.
        from .availability_cache import connect_signals

        connect_signals()
