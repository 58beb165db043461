"""What the portal's agenda tests share: a fixed "now", a clinic open on weekday mornings,
and booking through the service (as reception would)."""

from datetime import UTC, datetime, time

from scheduling import services
from scheduling.choices import Weekday
from scheduling.models import Appointment
from tests.clinic.factories import ProfessionalFactory
from tests.scheduling.factories import ServiceFactory, WorkingHoursFactory

#: Monday 2 March 2026, 09:00 in São Paulo.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
#: Thursday 5 March 2026, 11:00 in São Paulo: outside the 24-hour cancellation window.
THURSDAY_11H = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)
#: Tuesday 3 March 2026, 08:00 in São Paulo: 23 hours ahead, inside the window.
TUESDAY_8H = datetime(2026, 3, 3, 11, 0, tzinfo=UTC)


def open_desk(clinic, *, service: str, preparation: str) -> dict:
    """The clinic with an address and a phone; Dra. Helena performs ``service`` on weekday
    mornings (08:00–12:00)."""
    clinic.phone = "+551133334444"
    clinic.street, clinic.number, clinic.city, clinic.state = (
        "Rua das Flores",
        "100",
        "São Paulo",
        "SP",
    )
    clinic.save()
    helena = ProfessionalFactory(clinic=clinic, full_name="Dra. Helena Prado")
    offered = ServiceFactory(
        clinic=clinic,
        name=service,
        professionals=[helena],
        preparation_instructions=preparation,
    )
    for weekday in Weekday.values[:5]:
        WorkingHoursFactory(
            professional=helena, weekday=weekday, start_time=time(8), end_time=time(12)
        )
    return {"clinic": clinic, "professional": helena, "service": offered}


def book(desk, patient, start=THURSDAY_11H, **kwargs) -> Appointment:
    return services.appointment_book(
        clinic=desk["clinic"],
        patient=patient,
        professional=desk["professional"],
        service=desk["service"],
        start=start,
        **kwargs,
    )
