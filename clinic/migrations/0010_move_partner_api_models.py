# Issue 18: ApiKey, ApiRequestLog and IdempotencyRecord move to the partner_api sub-app
# (clinic/partner_api/migrations/0001_initial.py takes them over). State only: the tables
# stay where they are (the models name them in db_table); nothing is rebuilt.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("clinic", "0009_move_messaging_models"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # The models that point at ApiKey go first.
                migrations.DeleteModel(name="IdempotencyRecord"),
                migrations.DeleteModel(name="ApiRequestLog"),
                migrations.DeleteModel(name="ApiKey"),
            ],
            database_operations=[],
        ),
    ]
