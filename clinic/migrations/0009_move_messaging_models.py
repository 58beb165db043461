# Issue 18: the messaging models move to the clinic.messaging app (label ``messaging``).
# State only: the tables stay, under their names (``clinic_<model>``), and messaging's
# 0001_initial takes them into its state. OutboundMessage points at ReceivedMessage, so it
# goes first.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("clinic", "0008_outbound_in_flight_uncertain"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="OutboundMessage"),
                migrations.DeleteModel(name="ReceivedMessage"),
                migrations.DeleteModel(name="MessageTemplate"),
            ],
            database_operations=[],
        ),
    ]
