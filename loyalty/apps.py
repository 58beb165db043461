from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty")

    def ready(self):
        # Every plug-in point this app fills, named in one place (docs/architecture.md,
        # "Plug-in points"). Importing a module registers what it declares.
        from . import (
            handlers,  # noqa: F401  @subscriber: payments, appointments, leads, survey
            portal,  # noqa: F401  @export_section: the patient's points
        )
        from .services import (
            redemption,  # noqa: F401  @discount_code_handler("loyalty"): vouchers at the desk
        )
