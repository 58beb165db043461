"""``manage.py rotate_credentials``: re-encrypt every stored secret with the newest key.

Key rotation: put the new key first in ``CUIDAR_FERNET_KEYS`` (keeping the old ones after
it), deploy, run this command, then remove the old keys.
"""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.db.models.functions import Cast

from integrations import crypto
from integrations.models import ProviderAccount, WebhookSubscription

#: (model, encrypted field) pairs holding Fernet tokens.
ENCRYPTED_FIELDS = [
    (ProviderAccount, "credentials"),
    (WebhookSubscription, "secret"),
]


class Command(BaseCommand):
    help = (
        "Re-encrypt provider credentials and webhook subscription secrets with the first "
        "(newest) key of CUIDAR_FERNET_KEYS."
    )

    def handle(self, *args, **options):
        counts = []
        # One transaction, rows locked: a secret saved in the admin meanwhile is not
        # overwritten by its older value.
        with transaction.atomic():
            for model, field in ENCRYPTED_FIELDS:
                counts.append((model, self._rotate(model, field)))
        for model, count in counts:
            self.stdout.write(f"{model._meta.label}: {count} row(s) re-encrypted.")
        self.stdout.write(self.style.SUCCESS(f"{sum(c for _m, c in counts)} row(s) in all."))

    def _rotate(self, model, field: str) -> int:
        # The raw token, read as text so the field does not decrypt it.
        rows = (
            model.objects.select_for_update()
            .annotate(token=Cast(field, models.TextField()))
            .exclude(token="")
            .exclude(token__isnull=True)
            .order_by("pk")  # locks taken in primary-key order
            .values_list("pk", "token")
        )
        count = 0
        for pk, token in rows:
            try:
                rotated = crypto.rotate(token)
            except InvalidToken:
                raise CommandError(
                    f"{model._meta.label} {pk}: {field} cannot be decrypted with any key of "
                    "CUIDAR_FERNET_KEYS (was a key removed too early?). Nothing was changed."
                ) from None
            # A Value expression is written as is, not encrypted a second time by the field.
            model.objects.filter(pk=pk).update(
                **{field: models.Value(rotated, output_field=models.TextField())}
            )
            count += 1
        return count
