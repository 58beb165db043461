"""Staff roles and the Django permissions each one grants.

A ``Membership`` gives a user a role in one clinic; the user belongs to the Django group of
every role they hold (see ``services.membership_sync_groups``). Which *rows* they see is the
tenancy scoping's job; these permissions only say what they may *do*.

Later apps add their own codenames here; ``role_groups_sync`` runs after every migrate, so a
new permission reaches its groups without another data migration.
"""

from .choices import MembershipRole

# Group names are stable identifiers (not translated): they are stored in the database.
ROLE_GROUPS = {
    MembershipRole.RECEPTIONIST: "Recepção",
    MembershipRole.PROFESSIONAL: "Profissional",
    MembershipRole.MANAGER: "Gerência",
    MembershipRole.ADMIN: "Administração da clínica",
}

# The agenda: reception books, moves and checks in ("change" is what the one-click status
# actions need); appointments are never deleted, only cancelled.
_AGENDA_DESK = {
    "scheduling.view_appointment",
    "scheduling.add_appointment",
    "scheduling.change_appointment",
    "scheduling.view_service",
    "scheduling.view_workinghours",
    "scheduling.view_timeoff",
    "scheduling.view_clinicclosure",
    "scheduling.view_waitlistentry",
    "scheduling.add_waitlistentry",
    "scheduling.change_waitlistentry",
    "scheduling.view_waitlistoffer",
    "scheduling.view_recurrenceseries",
    "scheduling.add_recurrenceseries",
}
_AGENDA_SETUP = {
    "scheduling.add_service",
    "scheduling.change_service",
    "scheduling.delete_service",
    "scheduling.add_workinghours",
    "scheduling.change_workinghours",
    "scheduling.delete_workinghours",
    "scheduling.add_timeoff",
    "scheduling.change_timeoff",
    "scheduling.delete_timeoff",
    "scheduling.add_clinicclosure",
    "scheduling.change_clinicclosure",
    "scheduling.delete_clinicclosure",
    "scheduling.delete_waitlistentry",
    "scheduling.view_calendarfeed",
    "scheduling.add_calendarfeed",
    "scheduling.change_calendarfeed",
    "scheduling.delete_calendarfeed",
}

# Messages: reception reads what was sent and received, writes to patients and works the
# "unanswered" inbox (marking answered is a change); managers own the message texts.
_MESSAGES_DESK = {
    "messaging.view_outboundmessage",
    "messaging.add_outboundmessage",
    "messaging.view_receivedmessage",
    "messaging.change_receivedmessage",
    "messaging.view_messagetemplate",
}
_MESSAGE_TEXTS = {
    "messaging.add_messagetemplate",
    "messaging.change_messagetemplate",
    "messaging.delete_messagetemplate",
}
# The assistant's knowledge base (issue 24): reception reads the entries an answer cites;
# managers write them, as they write the message texts.
_MESSAGES_DESK |= {"messaging.view_knowledgeentry"}
_MESSAGE_TEXTS |= {
    "messaging.add_knowledgeentry",
    "messaging.change_knowledgeentry",
    "messaging.delete_knowledgeentry",
}
# The assistant's conversations (issue 24): reception reads them, takes over, hands back,
# closes and writes (all "change"); managers switch the assistant on and set its texts.
_MESSAGES_DESK |= {"messaging.view_conversation", "messaging.change_conversation"}
_MESSAGE_TEXTS |= {
    "messaging.view_assistantsettings",
    "messaging.add_assistantsettings",
    "messaging.change_assistantsettings",
}

# Billing: reception registers and charges payments and acts on them ("change" is what
# confirm, cancel, charge again and refund need; the payment rows themselves are read-only
# in the admin) and sells packages; managers set up packages, keep the ledger (reports and
# reconciliation read and mark it) and re-issue or cancel NFS-e; clinic administrators get
# every billing permission.
_BILLING_DESK = {
    "billing.view_payment",
    "billing.add_payment",
    "billing.change_payment",
    "billing.view_paymentrefund",  # the refunds shown on a payment
    "billing.view_package",
    "billing.view_packageitem",  # the services shown on a package
    "billing.view_patientpackage",
    "billing.add_patientpackage",  # "Sell a package" at the desk
    "billing.view_packagesessionuse",  # the sessions shown on a patient's package
    "billing.view_invoice",
}
_BILLING_MANAGEMENT = {
    "billing.add_package",
    "billing.change_package",
    "billing.delete_package",
    "billing.add_packageitem",
    "billing.change_packageitem",
    "billing.delete_packageitem",
    "billing.view_financialtransaction",  # the ledger and the financial reports
    "billing.add_financialtransaction",  # expenses
    "billing.change_financialtransaction",  # expenses, "mark reconciled", reconciliation
    "billing.change_invoice",  # issue again, cancel
}
_BILLING_MODELS = (
    "package",
    "packageitem",
    "patientpackage",
    "packagesessionuse",
    "payment",
    "paymentrefund",
    "invoice",
    "financialtransaction",
    "paymentdiscount",
)
_BILLING_ALL = {
    f"billing.{action}_{model}"
    for model in _BILLING_MODELS
    for action in ("view", "add", "change", "delete")
}

# The CRM: reception works leads (the board, calls and notes, booking them) and reads
# segments and campaigns; managers run marketing (segments, campaigns, settings, spend).
_CRM_DESK = {
    "crm.view_lead",
    "crm.add_lead",
    "crm.change_lead",
    "crm.view_leadalert",
    "crm.view_segment",
    "crm.view_campaign",
}
_CRM_MANAGEMENT = {
    f"crm.{action}_{model}"
    for model in ("lead", "leadalert", "segment", "campaign", "marketingsettings", "marketingspend")
    for action in ("view", "add", "change", "delete")
}
# Loyalty: reception sees accounts, the ledger, vouchers and referrals and redeems a reward
# for a patient (a voucher for the payment desk); managers run the programme and the
# catalogue, adjust points by hand (audited: "add" of a ledger entry is only that) and
# cancel unused vouchers.
_LOYALTY_DESK = {
    "loyalty.view_loyaltyaccount",
    "loyalty.view_pointsentry",
    "loyalty.view_reward",
    "loyalty.view_redemption",
    "loyalty.add_redemption",
    "loyalty.view_referral",
    "loyalty.view_loyaltyprogram",
    "billing.view_paymentdiscount",  # the voucher shown on a payment
}
_LOYALTY_MANAGEMENT = {
    "loyalty.change_loyaltyprogram",
    "loyalty.add_loyaltyprogram",
    "loyalty.add_reward",
    "loyalty.change_reward",
    "loyalty.delete_reward",
    "loyalty.add_pointsentry",
    "loyalty.change_redemption",
}

_RECEPTIONIST = (
    _AGENDA_DESK
    | _CRM_DESK
    | _LOYALTY_DESK
    | _MESSAGES_DESK
    | _BILLING_DESK
    | {
        "clinic.view_clinic",
        "clinic.view_patient",
        "clinic.add_patient",
        "clinic.change_patient",
        "clinic.view_consent",
        "clinic.add_consent",
        "clinic.view_professional",
        "clinic.view_room",
        # Patients' LGPD requests: reception sees them; managers handle them.
        "clinic.view_privacyrequest",
        # What the console (sandbox) providers recorded, read-only and of their clinic:
        # the demo's portal sign-in code is there. Nothing new: the same texts are in the
        # messages sent, which reception already reads.
        "integrations.view_consolerecord",
        # The clinical record: that an encounter exists (date, professional, service), never
        # its content — what a user reads is decided by clinic.records.access, not here.
        "records.view_encounter",
    }
)
_PROFESSIONAL = {
    "records.view_encounter",
    "scheduling.view_appointment",
    "scheduling.change_appointment",  # call the patient in, complete
    "scheduling.view_service",
    "scheduling.view_workinghours",
    "scheduling.view_timeoff",
    "clinic.view_clinic",
    "clinic.view_patient",
    "clinic.change_patient",
    "clinic.view_consent",
    "clinic.add_consent",
    "clinic.view_professional",
    "clinic.view_room",
}
_MANAGER = (
    _RECEPTIONIST
    | _CRM_MANAGEMENT
    | _AGENDA_SETUP
    | _MESSAGE_TEXTS
    | _BILLING_MANAGEMENT
    | _LOYALTY_MANAGEMENT
    | {
        "clinic.delete_patient",
        "clinic.add_professional",
        "clinic.change_professional",
        "clinic.delete_professional",
        "clinic.add_room",
        "clinic.change_room",
        "clinic.delete_room",
        "clinic.view_membership",
        # Handle patients' LGPD requests (anonymise, refuse); see and end portal sessions.
        "clinic.change_privacyrequest",
        "portal.view_portalsession",
        "portal.change_portalsession",
        # The audit trail (read-only: nobody may change it).
        "clinic.view_auditentry",
        # Emergency accesses to clinical records, for review (their reasons).
        "records.view_breakglass",
    }
)
# Integrations: managers watch them, clinic administrators configure them and act on dead
# letters (retry/archive need "change").
_INTEGRATIONS_VIEW = {
    "integrations.view_event",
    "integrations.view_delivery",  # the deliveries shown inline on an event
    "integrations.view_deliveryattempt",  # the attempts shown on a dead letter
    "integrations.view_deadletter",
    "integrations.view_provideraccount",
    "integrations.view_externalcall",
    "integrations.view_inboundwebhook",
    "integrations.view_webhooksubscription",
    "integrations.view_consolerecord",
}
# What providers cost per month (language models, WhatsApp, SMS): managers watch it.
_INTEGRATIONS_VIEW |= {"integrations.view_providerusage"}
_MANAGER |= _INTEGRATIONS_VIEW
_ADMIN = (
    _MANAGER
    | _BILLING_ALL
    | {
        "clinic.change_clinic",
        "clinic.add_membership",
        "clinic.change_membership",
        "clinic.delete_membership",
        "integrations.change_deadletter",
        "integrations.add_provideraccount",
        "integrations.change_provideraccount",
        "integrations.delete_provideraccount",
        "integrations.change_inboundwebhook",
        "integrations.add_webhooksubscription",
        "integrations.change_webhooksubscription",
        "integrations.delete_webhooksubscription",
        # Partner API keys: the clinic administrator issues and revokes them.
        "partner_api.view_apikey",
        "partner_api.add_apikey",
        "partner_api.change_apikey",
        "partner_api.view_apirequestlog",
    }
)

# Clinical templates (issue 20): professionals and clinic administrators define them; none
# is deleted (encounters keep their versions), a template is deactivated instead.
_CLINICAL_TEMPLATES = {
    "records.view_clinicaltemplate",
    "records.add_clinicaltemplate",
    "records.change_clinicaltemplate",
    "records.view_clinicaltemplateversion",
}
_PROFESSIONAL = _PROFESSIONAL | _CLINICAL_TEMPLATES
_ADMIN = _ADMIN | _CLINICAL_TEMPLATES

ROLE_PERMISSIONS: dict[str, set[str]] = {
    MembershipRole.RECEPTIONIST: _RECEPTIONIST,
    MembershipRole.PROFESSIONAL: _PROFESSIONAL,
    MembershipRole.MANAGER: _MANAGER,
    MembershipRole.ADMIN: _ADMIN,
}


def role_groups_sync(*, group_model, permission_model, using: str = "default") -> None:
    """Create the role groups and give each exactly its permissions.

    Takes the models as arguments so that migrations can pass their historical ones.
    Permissions that do not exist yet (an app not migrated) are skipped; the next
    ``migrate`` adds them.
    """
    for role, name in ROLE_GROUPS.items():
        group, _created = group_model.objects.using(using).get_or_create(name=name)
        wanted = ROLE_PERMISSIONS[role]
        perms = []
        for dotted in sorted(wanted):
            app_label, codename = dotted.split(".", 1)
            perm = (
                permission_model.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)
