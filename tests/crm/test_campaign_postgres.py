"""A campaign to a segment of 10,000 on PostgreSQL: nobody without consent, nobody over the
frequency cap, nothing in quiet hours, the holdout left out, nothing sent twice on a
re-run, and a kill -9 of the process mid-campaign loses and doubles nothing."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from clinic.choices import ConsentPurpose, ConsentStatus, ContactChannel
from clinic.messaging.models import OutboundMessage
from clinic.models import Consent, Patient
from crm import selectors, services
from crm.choices import CampaignKind, CampaignStatus, RecipientStatus
from crm.exceptions import TemplateNotCompliant
from crm.models import Campaign, CampaignRecipient, Segment
from integrations.models import Event

ROOT = Path(__file__).resolve().parents[2]
# 2026-12-07 is a Monday; São Paulo is UTC-3.
MONDAY_10H = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
MONDAY_21H = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
SUNDAY_14H = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
CHRISTMAS_11H = datetime(2026, 12, 25, 14, 0, tzinfo=UTC)
DIRECTOR = "Responsável técnico: Dra. Ana Souza — CRM/SP 123456"


def people(clinic, *, consenting: int, revoked: int = 0, silent: int = 0) -> list[int]:
    """Patients in bulk: ``consenting`` opted in to WhatsApp marketing, ``revoked`` opted in
    then out, ``silent`` never asked. Returns the consenting ones' ids."""
    total = consenting + revoked + silent
    rows = [
        Patient(clinic=clinic, full_name=f"Pessoa {i}", phone=f"+55119{i:08d}")
        for i in range(total)
    ]
    Patient.objects.bulk_create(rows, batch_size=5000)
    ids = list(Patient.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True))
    before = datetime(2026, 1, 1, tzinfo=UTC)
    consents = [
        Consent(
            clinic=clinic,
            patient_id=pk,
            channel=ContactChannel.WHATSAPP,
            purpose=ConsentPurpose.MARKETING,
            status=ConsentStatus.GRANTED,
            recorded_at=before,
        )
        for pk in ids[: consenting + revoked]
    ] + [
        Consent(
            clinic=clinic,
            patient_id=pk,
            channel=ContactChannel.WHATSAPP,
            purpose=ConsentPurpose.MARKETING,
            status=ConsentStatus.REVOKED,
            recorded_at=before + timedelta(days=1),
        )
        for pk in ids[consenting : consenting + revoked]
    ]
    Consent.objects.bulk_create(consents, batch_size=5000)
    return ids[:consenting]


def campaign_for(clinic, **fields) -> Campaign:
    segment = Segment.objects.create(clinic=clinic, name="Todos", channel="whatsapp", filters={})
    return Campaign.objects.create(
        clinic=clinic,
        name="Dezembro",
        kind=CampaignKind.RETENTION,
        segment=segment,
        text=f"Avaliação com 20% de desconto em dezembro.\n{DIRECTOR}",
        **fields,
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_campaign_to_10000_respects_consent_cap_quiet_hours_and_holdout(
    clinic_a, marketing_a, django_assert_max_num_queries
):
    consenting = people(clinic_a, consenting=10_000, revoked=700, silent=800)
    # 300 got another campaign's message 3 days ago: the 7-day cap holds them back.
    capped = set(consenting[:300])
    OutboundMessage.objects.bulk_create(
        OutboundMessage(
            clinic=clinic_a,
            patient_id=pk,
            template="promocao",
            purpose=ConsentPurpose.MARKETING,
            idempotency_key=f"other:{pk}",
            body="x",
        )
        for pk in capped
    )
    OutboundMessage.objects.filter(idempotency_key__startswith="other:").update(
        created_at=MONDAY_10H - timedelta(days=3)
    )
    campaign = campaign_for(clinic_a)
    assert services.campaign_start(campaign=campaign, now=MONDAY_10H - timedelta(hours=2)) == 10_000

    # Opted out after the start (SAIR): checked again at sending.
    late_revoked = set(consenting[5000:5100])
    Consent.objects.bulk_create(
        Consent(
            clinic=clinic_a,
            patient_id=pk,
            channel=ContactChannel.WHATSAPP,
            purpose=ConsentPurpose.MARKETING,
            status=ConsentStatus.REVOKED,
            recorded_at=MONDAY_10H - timedelta(hours=1),
        )
        for pk in late_revoked
    )

    for quiet in (MONDAY_21H, SUNDAY_14H, CHRISTMAS_11H):
        assert services.campaign_run_batch(campaign_id=campaign.pk, now=quiet) == 0
    assert not OutboundMessage.objects.filter(idempotency_key__startswith="campaign:").exists()

    with django_assert_max_num_queries(20):  # one batch: a fixed handful, not one per person
        services.campaign_run_batch(campaign_id=campaign.pk, limit=2000, now=MONDAY_10H)
    while services.campaign_run_batch(campaign_id=campaign.pk, limit=2000, now=MONDAY_10H):
        pass
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED

    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    status = dict(recipients.values_list("patient_id", "status"))
    sent = {pk for pk, s in status.items() if s == RecipientStatus.SENT}
    holdout = {pk for pk, s in status.items() if s == RecipientStatus.HOLDOUT}
    messaged = set(
        OutboundMessage.objects.filter(
            idempotency_key__startswith=f"campaign:{campaign.pk}:"
        ).values_list("patient_id", flat=True)
    )
    assert messaged == sent
    assert set(status) == set(consenting)  # nobody without consent was even a recipient
    assert not messaged & capped
    assert not messaged & late_revoked
    assert not messaged & holdout
    assert 800 <= len(holdout) <= 1200  # 10 %
    assert {status[pk] for pk in late_revoked - holdout} == {RecipientStatus.NO_CONSENT}
    assert {status[pk] for pk in capped - holdout} == {RecipientStatus.CAPPED}
    assert len(sent) == 10_000 - len(holdout) - len((capped | late_revoked) - holdout)

    # The same step again: nothing more.
    count = OutboundMessage.objects.count()
    assert services.campaign_run_batch(campaign_id=campaign.pk, now=MONDAY_10H) == 0
    assert OutboundMessage.objects.count() == count
    assert Event.objects.filter(event_type="campaign.completed").count() == 1

    metrics = selectors.campaign_metrics(campaign=campaign)
    assert (metrics.sent, metrics.holdout) == (len(sent), len(holdout))


@pytest.mark.django_db
def test_a_campaign_without_the_technical_director_cannot_be_sent(clinic_a, marketing_a):
    campaign = campaign_for(clinic_a)
    campaign.text = "Promoção de dezembro"
    campaign.save()
    with pytest.raises(TemplateNotCompliant):
        services.campaign_start(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    marketing_a.technical_director_crm = ""
    marketing_a.save()
    campaign.text = DIRECTOR
    campaign.save()
    with pytest.raises(TemplateNotCompliant):
        services.campaign_schedule(campaign=campaign, starts_at=MONDAY_10H)


@pytest.mark.django_db
def test_the_frequency_cap_holds_across_campaigns(clinic_a, marketing_a):
    people(clinic_a, consenting=20)
    first, second = (
        campaign_for(clinic_a, holdout_percent=0),
        campaign_for(clinic_a, holdout_percent=0),
    )
    services.campaign_start(campaign=first, now=MONDAY_10H)
    services.campaign_start(campaign=second, now=MONDAY_10H)
    assert services.campaign_run_batch(campaign_id=first.pk, now=MONDAY_10H) == 20
    assert services.campaign_run_batch(campaign_id=second.pk, now=MONDAY_10H) == 0
    assert CampaignRecipient.objects.filter(campaign=second, status="capped").count() == 20
    # A week later the cap has passed.
    third = campaign_for(clinic_a, holdout_percent=0)
    services.campaign_start(campaign=third, now=MONDAY_10H + timedelta(days=7, minutes=1))
    later = MONDAY_10H + timedelta(days=7, minutes=1)
    OutboundMessage.objects.filter(idempotency_key__startswith=f"campaign:{first.pk}:").update(
        created_at=MONDAY_10H
    )
    assert services.campaign_run_batch(campaign_id=third.pk, now=later) == 20


# --- kill -9 --------------------------------------------------------------------------------
def _env() -> dict:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@"
            f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
    }


@pytest.mark.postgres
@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_killing_the_sender_mid_campaign_loses_and_doubles_nothing(clinic_a, marketing_a):
    consenting = people(clinic_a, consenting=4000)
    campaign = campaign_for(clinic_a)
    services.campaign_start(campaign=campaign, now=MONDAY_10H)
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "crm_campaign_run",
                str(campaign.pk),
                "--batch",
                "300",
                "--at",
                MONDAY_10H.isoformat(),
            ],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill it once it has sent some batches, in the middle of the next.
        deadline = time.monotonic() + 60
        start = CampaignRecipient.objects.filter(campaign=campaign, status="sent").count()
        while time.monotonic() < deadline and process.poll() is None:
            done = CampaignRecipient.objects.filter(campaign=campaign, status="sent").count()
            if done >= start + 600:
                break
            time.sleep(0.05)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=10)
    assert kills >= 1
    # Run it again, to the end (in a process of its own too: here, the tests' eager Celery
    # would deliver every message inline).
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "crm_campaign_run",
            str(campaign.pk),
            "--batch",
            "1000",
            "--at",
            MONDAY_10H.isoformat(),
        ],
        cwd=ROOT,
        env=_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    keys = list(
        OutboundMessage.objects.filter(
            idempotency_key__startswith=f"campaign:{campaign.pk}:"
        ).values_list("patient_id", flat=True)
    )
    sent = set(
        CampaignRecipient.objects.filter(campaign=campaign, status="sent").values_list(
            "patient_id", flat=True
        )
    )
    assert len(keys) == len(set(keys))  # nothing doubled
    assert set(keys) == sent  # nothing lost: every one decided "sent" has its message
    assert not CampaignRecipient.objects.filter(campaign=campaign, status="pending").exists()
    assert len(sent) + CampaignRecipient.objects.filter(
        campaign=campaign, status="holdout"
    ).count() == len(consenting)
