"""The clinic app in the admin, one module per subject: ``base`` (the one tenancy mechanism
every clinic-owned ModelAdmin of every app stands on), ``tenancy`` (clinics, memberships,
staff accounts), ``people`` (patients, professionals, rooms, consents), ``messaging``
(message texts, messages, the unanswered inbox, the patient's timeline) and ``privacy``
(LGPD requests, the audit trail). API keys and the request log are in
``clinic.partner_api.admin``, portal sessions in ``clinic.portal.admin``.

Django autodiscovers ``clinic.admin``: importing the modules registers their ModelAdmins.
"""

from . import messaging, people, privacy, tenancy  # noqa: F401  (registers the ModelAdmins)
