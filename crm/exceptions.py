"""Errors of the CRM: one hierarchy, rendered as problem+json by the API and as a message in
the admin."""

from clinic.kernel.errors import ApplicationError


class CrmError(ApplicationError):
    code = "crm_error"


class InvalidLeadTransition(CrmError):
    status_code = 409
    code = "invalid_lead_transition"


class InvalidCampaignTransition(CrmError):
    status_code = 409
    code = "invalid_campaign_transition"


class TemplateNotCompliant(CrmError):
    """CFM Resolução 2.336/2023: medical advertising names the technical director and their
    CRM; a campaign whose text does not cannot be sent."""

    status_code = 409
    code = "template_not_compliant"
