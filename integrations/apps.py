from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    # The apps above register their @subscriber and @inbound_handler functions themselves:
    # each app's ready() imports its handlers.py (docs/architecture.md, "Plug-in points";
    # tests/integrations/test_plugins.py checks that none is forgotten).
