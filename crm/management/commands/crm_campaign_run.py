"""Send a running campaign's batches now, until it completes or quiet hours stop it
(operators; the crash test kills it with SIGKILL mid-way)."""

from datetime import datetime

from django.core.management.base import BaseCommand

from crm.models import Campaign
from crm.services import campaign_run_batch


class Command(BaseCommand):
    help = "Send a running campaign's batches until it completes (or quiet hours begin)."

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int, help="the campaign's id")
        parser.add_argument("--batch", type=int, default=None, help="messages per batch")
        parser.add_argument(
            "--at",
            default=None,
            help="act as at this ISO time (quiet hours are judged at it); default: now",
        )

    def handle(self, *args, campaign: int, batch: int | None, at: str | None, **options):
        now = datetime.fromisoformat(at) if at else None
        total = 0
        while True:
            sent = campaign_run_batch(campaign_id=campaign, limit=batch, now=now)
            total += sent
            status = Campaign.objects.filter(pk=campaign).values_list("status", flat=True).first()
            if status != "running" or not sent:
                break
        self.stdout.write(f"{total} messages recorded; campaign {status}")
