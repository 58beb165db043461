"""Show staff every datetime in the time zone of the clinic they work in."""

from django.utils import timezone

from clinic.kernel.timezones import clinic_zone

from .kernel.tenancy import current_clinic


class ClinicTimezoneMiddleware:
    """Activates the current clinic's time zone for signed-in staff (forms read and
    display times in it); everyone else gets the default (America/Sao_Paulo)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        clinic = current_clinic(request) if user is not None and user.is_staff else None
        if clinic is not None:
            timezone.activate(clinic_zone(clinic))
        else:
            timezone.deactivate()
        return self.get_response(request)
