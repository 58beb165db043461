from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        # Every plug-in point this app fills, named in one place (docs/architecture.md,
        # "Plug-in points"). Importing a module registers what it declares.
        from . import (
            assistant_tools,  # noqa: F401  the assistant's tools: package balance, open charge
            handlers,  # noqa: F401  @subscriber (package sessions, NFS-e) and @inbound_handler
            portal,  # noqa: F401  @export_section: payments, packages
        )
