from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_role_groups(sender, using="default", **kwargs):
    # post_migrate is sent once per installed app (on every migrate, and on every flush
    # between transactional tests); the groups take permissions of every app, so they are
    # synced once, when the last app's permissions exist.
    from django.apps import apps

    last = [config for config in apps.get_app_configs() if config.models_module is not None][-1]
    if sender.label != last.label:
        return
    from django.contrib.auth.models import Group, Permission

    from .roles import role_groups_sync

    role_groups_sync(group_model=Group, permission_model=Permission, using=using)


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = _("Clinic")

    def ready(self):
        # After every migrate (when all permissions exist), keep the role groups exact.
        post_migrate.connect(_sync_role_groups, dispatch_uid="clinic.sync_role_groups")
        # Plug-in points this app fills (docs/architecture.md, "Plug-in points"):
        from . import handlers  # noqa: F401  @subscriber: backups and restores in the audit trail
