"""Every write of the CRM (CONVENTIONS rule 1): run atomically, scoped to a clinic, and
publish the domain events. Callers write ``services.lead_capture`` whatever module holds it."""

from .campaigns import (
    campaign_run_batch,
    campaign_schedule,
    campaign_start,
    campaign_transition,
    campaigns_tick,
    reactivation_run,
)
from .leads import (
    ANONYMISED_NAME,
    ERASED_FIELDS,
    interaction_record,
    lead_assign_owner,
    lead_capture,
    lead_convert,
    lead_create,
    lead_merge,
    lead_patient_create,
    lead_rescore,
    lead_transition,
    leads_anonymise,
    leads_retention_anonymise,
    marketing_settings,
    phone_key,
)

__all__ = [
    "ANONYMISED_NAME",
    "ERASED_FIELDS",
    "campaign_run_batch",
    "campaign_schedule",
    "campaign_start",
    "campaign_transition",
    "campaigns_tick",
    "interaction_record",
    "lead_assign_owner",
    "lead_capture",
    "lead_convert",
    "lead_create",
    "lead_merge",
    "lead_patient_create",
    "lead_rescore",
    "lead_transition",
    "leads_anonymise",
    "leads_retention_anonymise",
    "marketing_settings",
    "phone_key",
    "reactivation_run",
]
