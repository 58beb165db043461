"""``manage.py dlq list|retry ID…|archive ID…``: the dead-letter list for operators."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.choices import DeliveryStatus
from integrations.models import Delivery
from integrations.outbox import delivery_archive, delivery_retry


class Command(BaseCommand):
    help = "List, retry or archive dead deliveries (dead letters)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Show dead letters, newest first.")
        listing.add_argument("--clinic", type=int, help="Only this clinic id.")
        listing.add_argument("--event-type", help="Only this event type.")
        listing.add_argument("--limit", type=int, default=50)
        for name, text in (("retry", "Try them again"), ("archive", "Archive them")):
            action = sub.add_parser(name, help=f"{text} (by delivery id).")
            action.add_argument("ids", nargs="+", type=int)

    def handle(self, *args, action, **options):
        if action == "list":
            return self._list(**options)
        return self._act(action, options["ids"])

    def _list(self, *, clinic=None, event_type=None, limit=50, **_):
        dead = Delivery.objects.filter(status=DeliveryStatus.DEAD).order_by("-dead_at")
        if clinic:
            dead = dead.filter(clinic_id=clinic)
        if event_type:
            dead = dead.filter(event_type=event_type)
        rows = list(dead[:limit])
        if not rows:
            self.stdout.write("No dead letters.")
            return
        for d in rows:
            error = (d.last_error or "").splitlines()[0][:100] if d.last_error else ""
            self.stdout.write(
                f"{d.pk}\tclinic={d.clinic_id}\t{d.event_type}\t{d.subscriber}\t"
                f"attempts={d.attempts}\tdead_at={d.dead_at:%Y-%m-%d %H:%M}\t{error}"
            )

    def _act(self, action, ids):
        service = delivery_retry if action == "retry" else delivery_archive
        wanted = (
            {DeliveryStatus.DEAD, DeliveryStatus.ARCHIVED}
            if action == "retry"
            else {DeliveryStatus.DEAD}
        )
        with transaction.atomic():
            found = {d.pk: d for d in Delivery.objects.select_for_update().filter(pk__in=ids)}
            missing = [i for i in ids if i not in found]
            wrong = [i for i, d in found.items() if d.status not in wanted]
            if missing or wrong:
                problems = []
                if missing:
                    problems.append(f"not found: {', '.join(map(str, missing))}")
                if wrong:
                    problems.append(f"not dead letters: {', '.join(map(str, sorted(wrong)))}")
                raise CommandError("; ".join(problems) + " — nothing was changed.")
            for delivery in found.values():
                service(delivery=delivery)
        verb = "will be retried" if action == "retry" else "archived"
        self.stdout.write(self.style.SUCCESS(f"{len(found)} deliveries {verb}."))
