"""The clinic app in the admin, one module per subject: ``base`` (the one tenancy mechanism
every clinic-owned ModelAdmin of every app stands on), ``tenancy`` (clinics, memberships,
staff accounts), ``people`` (patients, professionals, rooms, consents) and ``privacy``
(LGPD requests, the audit trail). The sub-apps have their own: messaging in
``clinic.messaging.admin``, API keys and the request log in ``clinic.partner_api.admin``,
portal sessions in ``clinic.portal.admin``.

Django autodiscovers ``clinic.admin``: importing the modules registers their ModelAdmins.
"""

from . import people, privacy, tenancy  # noqa: F401  (registers the ModelAdmins)
