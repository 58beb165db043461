from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self):
        # Each app's handlers.py registers its @subscriber functions on import: discover
        # them here, as the admin discovers admin.py (this app imports no domain app).
        autodiscover_modules("handlers")
