from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordsConfig(AppConfig):
    """The clinical record, a sub-app of clinic at the portal shell's layer: clinic's core and
    messaging never import it; scheduling and the apps above may."""

    name = "clinic.records"
    label = "records"
    verbose_name = _("Clinical record")
