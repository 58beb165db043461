# Issue 18: PortalChallenge and PortalSession move to the portal sub-app (label "portal").
# Only the migration state changes here; the tables stay (the models keep them with
# db_table) and portal's 0001_initial takes them over.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("clinic", "0010_move_partner_api_models"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="PortalSession"),
                migrations.DeleteModel(name="PortalChallenge"),
            ],
            database_operations=[],
        ),
    ]
