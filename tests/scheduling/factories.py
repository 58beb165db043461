"""Factories of the scheduling app (on top of tests/clinic/factories.py).

``AppointmentFactory`` fills ``end`` from the service's duration and the occupied range from
its buffers, as ``appointment_book`` does, so rows made here look like booked ones.
"""

from datetime import UTC, datetime, time, timedelta

import factory

from scheduling.choices import AppointmentStatus, Weekday
from scheduling.models import Appointment, ClinicClosure, Service, TimeOff, WorkingHours
from tests.clinic.factories import (
    ClinicFactory,
    PatientFactory,
    ProfessionalFactory,
)


class ServiceFactory(factory.django.DjangoModelFactory):
    """A 30-minute consultation bookable at any time (no notice, a year ahead).

    ``professionals=[…]`` and ``rooms=[…]`` set who performs it and where."""

    class Meta:
        model = Service
        skip_postgeneration_save = True

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Consulta {n}")
    duration_minutes = 30
    min_notice_minutes = 0
    max_advance_days = 365

    @factory.post_generation
    def professionals(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.professionals.set(extracted)

    @factory.post_generation
    def rooms(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.rooms.set(extracted)


class WorkingHoursFactory(factory.django.DjangoModelFactory):
    """Mondays 08:00–12:00."""

    class Meta:
        model = WorkingHours

    professional = factory.SubFactory(ProfessionalFactory)
    clinic = factory.LazyAttribute(lambda o: o.professional.clinic)
    weekday = Weekday.MONDAY
    start_time = time(8, 0)
    end_time = time(12, 0)


class TimeOffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimeOff

    professional = factory.SubFactory(ProfessionalFactory)
    clinic = factory.LazyAttribute(
        lambda o: o.professional.clinic if o.professional else o.room.clinic
    )
    start = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=1))
    reason = "Curso"


class ClinicClosureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicClosure

    clinic = factory.SubFactory(ClinicFactory)
    start_date = factory.LazyAttribute(lambda o: o.end_date)
    end_date = datetime(2026, 3, 2).date()
    reason = "Dedetização"


class AppointmentFactory(factory.django.DjangoModelFactory):
    """An appointment of ``service`` (with its professional, clinic and a new patient)."""

    class Meta:
        model = Appointment

    service = factory.SubFactory(ServiceFactory)
    clinic = factory.LazyAttribute(lambda o: o.service.clinic)
    professional = factory.SubFactory(ProfessionalFactory, clinic=factory.SelfAttribute("..clinic"))
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    start = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    end = factory.LazyAttribute(lambda o: o.start + o.service.duration)
    occupied_start = factory.LazyAttribute(lambda o: o.start - o.service.buffer_before)
    occupied_end = factory.LazyAttribute(lambda o: o.end + o.service.buffer_after)
    status = AppointmentStatus.SCHEDULED
    price = factory.LazyAttribute(lambda o: o.service.price)
