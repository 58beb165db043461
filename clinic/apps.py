from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_role_groups(sender, using="default", **kwargs):
    from django.contrib.auth.models import Group, Permission

    from .roles import role_groups_sync

    role_groups_sync(group_model=Group, permission_model=Permission, using=using)


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = _("Clinic")

    def ready(self):
        # After every migrate (when all permissions exist), keep the role groups exact.
        post_migrate.connect(_sync_role_groups, dispatch_uid="clinic.sync_role_groups")
        # E-mail delivery/read receipts arrive through anymail's tracking signal.
        from anymail.signals import tracking

        from .handlers import anymail_tracking_received

        tracking.connect(anymail_tracking_received, dispatch_uid="clinic.anymail_tracking")
        # A cached API key is dropped when the key or its clinic is saved, in every process
        # (a Celery task may revoke a key or deactivate a clinic too).
        from . import api_framework  # noqa: F401
