from django.contrib.admin.apps import AdminConfig


class CuidarAdminConfig(AdminConfig):
    """django.contrib.admin with Cuidar's site as ``admin.site`` (so ``@admin.register``
    in every app, and third-party apps, land on it)."""

    default_site = "config.admin.CuidarAdminSite"

    def ready(self):
        super().ready()
        from . import checks  # noqa: F401  (registers Cuidar's system checks)
