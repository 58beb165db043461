"""What a reminder sweep costs the database: a few queries per batch, whatever its size."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from clinic.messaging.models import OutboundMessage
from scheduling import reminders
from tests.clinic.factories import ClinicFactory, ProfessionalFactory
from tests.scheduling.factories import AppointmentFactory, ServiceFactory
from tests.scheduling.test_reminders import consented_patient

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
EVENING = datetime(2026, 11, 23, 18, 0, tzinfo=SAO_PAULO)


@pytest.mark.django_db
def test_the_eve_sweep_runs_a_few_queries_per_batch_not_per_reminder(
    monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(reminders, "BATCH", 50)
    clinic = ClinicFactory()
    professionals = ProfessionalFactory.create_batch(5, clinic=clinic)
    service = ServiceFactory(clinic=clinic, duration_minutes=15, professionals=professionals)
    tomorrow = datetime(2026, 11, 24, 7, 0, tzinfo=SAO_PAULO)
    for professional in professionals:
        for n in range(50):
            AppointmentFactory(
                clinic=clinic,
                service=service,
                professional=professional,
                patient=consented_patient(clinic),
                start=tomorrow + timedelta(minutes=15 * n),
            )

    # 5 full batches and the empty read that ends the sweep: at most 12 queries a batch.
    with time_machine.travel(EVENING, tick=False), django_assert_max_num_queries(6 * 12):
        assert reminders.reminders_eve_send() == 250

    assert OutboundMessage.objects.filter(template="lembrete_vespera").count() == 250
    assert (
        OutboundMessage.objects.filter(
            template="lembrete_vespera", body__contains="amanhã, 24/11/2026"
        ).count()
        == 250
    )
