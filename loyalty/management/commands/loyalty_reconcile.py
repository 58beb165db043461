"""Check every account's cached balance against the sum of its ledger (``--fix``: rewrite the
cache from the ledger). Exit status 1 when a mismatch was found."""

from django.core.management.base import BaseCommand

from loyalty.services import accounts_reconcile


class Command(BaseCommand):
    help = "Compare each loyalty account's cached balance with its ledger."

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="set the cache to the ledger")

    def handle(self, *args, fix=False, **options):
        mismatches = accounts_reconcile(fix=fix)
        for m in mismatches:
            self.stdout.write(f"account {m.account_id}: cached {m.cached}, ledger {m.ledger}")
        self.stdout.write(f"{len(mismatches)} mismatched" + (" (fixed)" if fix else ""))
        if mismatches and not fix:
            raise SystemExit(1)
