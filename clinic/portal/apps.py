from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The portal shell, a sub-app of clinic above its core: core never imports it, so what
    core must know of portal sessions reaches it through core's plug-in points, plugged in
    here."""

    name = "clinic.portal"
    label = "portal"
    verbose_name = _("Patient portal")

    def ready(self):
        # LGPD: the patient's portal sessions are a section of "download my data" (the
        # import registers it with clinic.privacy's export_section), and anonymising a
        # patient signs them out of every device.
        from clinic.privacy import patient_anonymising

        from . import privacy

        patient_anonymising.connect(
            privacy.end_sessions_of_anonymised_patient, dispatch_uid="portal.sessions_end"
        )
