"""The scheduling app in the admin, one module per subject: ``appointments`` (the
changelist, booking, the read-only change page, bulk status actions), ``catalogue``
(services, working hours, time off, closures, the waitlist, calendar feeds), ``agenda`` (the
day and week pages, status buttons, rescheduling), ``checkin`` (the reception's check-in
page) and ``series`` (the "Book a series" page, wired in by ``CuidarAdminSite.get_urls``).

Every change goes through ``scheduling.services``; the agenda's computation is
``scheduling.agenda``. Django autodiscovers ``scheduling.admin``: importing the modules
registers their ModelAdmins.
"""

from . import appointments, catalogue  # noqa: F401  (registers the ModelAdmins)
