"""The demo's agenda obeys the professionals' working hours and leaves a bookable week,
whatever the day ``seed_demo`` runs (each test seeds its own demo on an empty database, apart
from tests/clinic/test_seed_demo.py, whose tests share one seeded demo)."""

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from clinic.models import Clinic, Professional
from scheduling.availability import slot_list_available
from scheduling.models import Appointment, Service, WorkingHours

pytestmark = pytest.mark.django_db

# --- The demo's agenda, whatever the day it is seeded ------------------------------------------
SP = ZoneInfo("America/Sao_Paulo")
#: A Saturday; a Sunday late in the evening; a national holiday (Tiradentes, a Tuesday);
#: New Year's Eve (a Thursday, the next day a holiday).
SEED_MOMENTS = [
    datetime(2026, 12, 5, 10, 0, tzinfo=SP),
    datetime(2026, 12, 6, 23, 30, tzinfo=SP),
    datetime(2027, 4, 21, 9, 0, tzinfo=SP),
    datetime(2026, 12, 31, 18, 45, tzinfo=SP),
]
#: Free times to book over the next 7 days, counted per professional (each works 45 h a week).
MIN_BOOKABLE_PER_PROFESSIONAL = 20


@pytest.mark.parametrize("moment", SEED_MOMENTS, ids=lambda m: m.strftime("%a-%Y-%m-%d-%H%M"))
def test_the_demo_agenda_obeys_working_hours_and_leaves_a_bookable_week(settings, moment):
    settings.DEBUG = True
    with time_machine.travel(moment, tick=False):
        call_command("seed_demo", patients=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
        demo = Clinic.objects.get(name="Clínica Demo")
        appointments = list(Appointment.objects.for_clinic(demo).select_related("service"))
        assert len(appointments) > 100
        hours = list(WorkingHours.objects.for_clinic(demo))
        closed = holidays.country_holidays("BR", years=[2026, 2027])
        for appointment in appointments:
            start, end = appointment.start.astimezone(SP), appointment.end.astimezone(SP)
            day = start.date()
            assert day not in closed, f"{appointment} is on a holiday"
            assert any(
                h.professional_id == appointment.professional_id
                and h.applies_on(day)
                and h.start_time <= start.time()
                and end.date() == day
                and end.time() <= h.end_time
                for h in hours
            ), f"{appointment} ({start:%a %H:%M}–{end:%H:%M}) is outside working hours"

        now = timezone.now()
        bookable = defaultdict(set)
        for service in Service.objects.for_clinic(demo).filter(is_active=True):
            for slot in slot_list_available(
                clinic=demo, service=service, start=now, end=now + timedelta(days=7)
            ):
                bookable[slot.professional_id].add(slot.start)
        professionals = Professional.objects.for_clinic(demo).values_list("pk", flat=True)
        short = {pk: len(bookable[pk]) for pk in professionals}
        assert min(short.values()) >= MIN_BOOKABLE_PER_PROFESSIONAL, short
