"""The clinic app in the admin, one module per subject: ``base`` (the one tenancy mechanism
every clinic-owned ModelAdmin of every app stands on), ``tenancy`` (clinics, memberships,
staff accounts), ``people`` (patients, professionals, rooms, consents), ``api`` (API keys,
request log) and ``privacy`` (LGPD requests, portal sessions, the audit trail). Messaging's
admin is its sub-app's (``clinic.messaging.admin``).

Django autodiscovers ``clinic.admin``: importing the modules registers their ModelAdmins.
"""

from . import api, people, privacy, tenancy  # noqa: F401  (registers the ModelAdmins)
