from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")

    def ready(self):
        # Every plug-in point this app fills, named in one place (docs/architecture.md,
        # "Plug-in points").
        from clinic.privacy import patient_anonymising

        # @subscriber: message.inbound (an unknown number becomes a lead), appointment.booked
        # / checked_in / completed (the funnel moves, conversion), payment.received (the
        # timeline), lead.hot (the owner's alert).
        from . import handlers  # noqa: F401
        from .receivers import erase_patient_leads

        # Signal: a patient anonymised at their request (LGPD) has their leads erased too.
        patient_anonymising.connect(erase_patient_leads, dispatch_uid="crm.leads_anonymise")
