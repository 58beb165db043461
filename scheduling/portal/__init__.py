"""Portal pages of the agenda: booking (service → professional → day → time → confirm), the
patient's appointments, one appointment (confirm, cancel, reschedule, a ``.ics`` file), and
the "appointments" part of the patient's data export.

- Reads go through ``selectors`` scoped to ``request.portal.patient`` (and so to its
  clinic): another patient's appointment id in a URL is a 404, like an unknown one.
- Writes go through ``services`` with ``Channel.PORTAL``; bookings and moves ask the
  services to check availability (working hours, notice, advance), as partners do.
- The booking steps are plain links and GET forms, the choices so far riding in the query
  string, so they work without JavaScript; only the final booking is a POST. Each step runs
  a fixed number of queries (availability is one batch of queries, whatever the range).
"""

from django.urls import path

from . import export  # noqa: F401  (registers the export sections)
from .appointments import (
    appointment_cancel,
    appointment_confirm,
    appointment_detail,
    appointment_ics,
    appointment_reschedule,
    appointments,
)
from .booking import book
from .common import home_context
from .record import my_record

__all__ = ["home_context", "urlpatterns"]

urlpatterns = [
    path("agendar/", book, name="book"),
    path("prontuario/", my_record, name="my_record"),
    path("consultas/", appointments, name="appointments"),
    path("consultas/<int:pk>/", appointment_detail, name="appointment"),
    path("consultas/<int:pk>/confirmar/", appointment_confirm, name="appointment_confirm"),
    path("consultas/<int:pk>/cancelar/", appointment_cancel, name="appointment_cancel"),
    path("consultas/<int:pk>/remarcar/", appointment_reschedule, name="appointment_reschedule"),
    path("consultas/<int:pk>/agenda.ics", appointment_ics, name="appointment_ics"),
]
