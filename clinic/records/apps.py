from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordsConfig(AppConfig):
    """The clinical record, a sub-app of clinic at the portal shell's layer: clinic's core and
    messaging never import it; scheduling and the apps above may."""

    name = "clinic.records"
    label = "records"
    verbose_name = _("Clinical record")

    def ready(self):
        # The encounters' admin and the record's pages (admin.py holds the reference data's).
        from . import handlers, record_admin  # noqa: F401  @subscriber: emergency access
