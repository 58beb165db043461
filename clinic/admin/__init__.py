"""The clinic app in the admin, one module per subject: ``base`` (the one tenancy mechanism
every clinic-owned ModelAdmin of every app stands on), ``tenancy`` (clinics, memberships,
staff accounts), ``people`` (patients, professionals, rooms, consents), ``messaging``
(message texts, messages, the unanswered inbox, the patient's timeline), ``api`` (API keys,
request log) and ``privacy`` (LGPD requests, the audit trail; portal sessions are in
``clinic.portal.admin``).

Django autodiscovers ``clinic.admin``: importing the modules registers their ModelAdmins.
"""

from . import api, messaging, people, privacy, tenancy  # noqa: F401  (registers the ModelAdmins)
