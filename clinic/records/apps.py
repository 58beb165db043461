from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordsConfig(AppConfig):
    """The clinical record, a sub-app of clinic at the portal shell's layer: clinic's core and
    messaging never import it; scheduling and the apps above may."""

    name = "clinic.records"
    label = "records"
    verbose_name = _("Clinical record")

    def ready(self):
        from django.db.models.signals import post_save

        # The encounters' admin and the record's pages (admin.py holds the reference data's);
        # handlers: @subscriber (emergency access); retention registers its hold.
        from . import handlers, receivers, record_admin, retention  # noqa: F401

        # A new clinic starts with the default clinical templates (clinic's core has no
        # creation service to hook, and must not import the record).
        post_save.connect(
            receivers.clinic_saved, sender="clinic.Clinic", dispatch_uid="records-default-templates"
        )
