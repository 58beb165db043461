from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnerApiConfig(AppConfig):
    name = "clinic.partner_api"
    label = "partner_api"
    verbose_name = _("Partner API")

    def ready(self):
        # A cached API key is dropped when the key or its clinic is saved, in every process
        # (a Celery task may revoke a key or deactivate a clinic too): the receivers are
        # connected when keys.py is imported.
        from . import keys  # noqa: F401
