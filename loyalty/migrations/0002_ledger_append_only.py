"""The points ledger is append-only in the database itself on PostgreSQL: a balance is only
as good as the entries it sums, so an entry is never edited or erased (a correction is a new
entry)."""

from django.db import migrations

from clinic.append_only import append_only_trigger


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [append_only_trigger("loyalty_pointsentry")]
