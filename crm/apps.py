from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")

    def ready(self):
        # A patient anonymised at their request (LGPD): their leads are erased too.
        from clinic.privacy import patient_anonymising

        from .receivers import erase_patient_leads

        patient_anonymising.connect(erase_patient_leads, dispatch_uid="crm.leads_anonymise")
