"""Errors of the scheduling app (rendered as form errors in the admin, HTTP errors later)."""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinic.kernel.errors import ApplicationError


class SchedulingError(ApplicationError):
    code = "scheduling_error"


class SlotUnavailable(SchedulingError):
    """The time is taken (for the professional, the room or the patient) or outside
    availability. ``conflicts`` names which: "professional", "room", "patient", "hours"."""

    status_code = 409
    code = "slot_unavailable"
    title = _("Time slot unavailable")

    def __init__(self, message=None, *, conflicts: list[str] | None = None):
        super().__init__(message or _("Time slot unavailable."))
        self.conflicts = conflicts or []


class InvalidTransition(SchedulingError):
    status_code = 409
    code = "invalid_transition"
    title = _("Status change not allowed")

    def __init__(self, *, current: str, wanted: str):
        super().__init__(
            _("An appointment that is %(current)s cannot become %(wanted)s.")
            % {"current": current, "wanted": wanted}
        )
        self.current = current
        self.wanted = wanted


class CancellationWindowClosed(SchedulingError):
    status_code = 409
    code = "cancellation_window_closed"
    title = _("Too late to cancel")


class NoAppointmentToday(SchedulingError):
    status_code = 404
    code = "no_appointment_today"
    title = _("No appointment today")


class OfferUnavailable(SchedulingError):
    """A waitlist offer that was already taken, expired or claimed."""

    status_code = 409
    code = "offer_unavailable"
    title = _("Offer no longer available")


class SeriesClash(SchedulingError):
    """Some dates of a recurring series are taken; ``clashes`` lists them."""

    status_code = 409
    code = "series_clash"
    title = _("Dates of the series taken")

    def __init__(self, message, *, clashes):
        super().__init__(message)
        self.clashes = clashes


def wrong_pair_message(professional, service, offered) -> str:
    """Why a professional cannot be booked for a service, naming what they do perform
    (``offered``: their active services) so that the fix is one choice away."""
    names = ", ".join(sorted(str(s) for s in offered))
    if not names:
        return gettext("%(professional)s does not perform %(service)s, nor any active service.") % {
            "professional": professional,
            "service": service,
        }
    return gettext(
        "%(professional)s does not perform %(service)s. Services of %(professional)s: %(services)s."
    ) % {"professional": professional, "service": service, "services": names}
