from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Staff accounts and their security (issue 19): second factors, lockout, sessions,
    re-authentication for critical acts, one person one account, invitations."""

    name = "clinic.accounts"
    label = "accounts"
    verbose_name = _("Staff security")

    def ready(self):
        from . import handlers

        handlers.connect()
