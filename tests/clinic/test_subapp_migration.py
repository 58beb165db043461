"""An existing database migrates in place when clinic's models move into its sub-apps
(issue 18): the rows written before the move are read through the new apps' models, no
table is rebuilt, and permissions granted on the old content types still hold.

The database is taken back to clinic's last migration before the move (Django unapplies every
migration that depends on the later ones), rows are written with the historical models of that
state, and the project is migrated forward again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_THE_MOVE = [("clinic", "0008_outbound_in_flight_uncertain")]
MOVED = {
    "messaging": ["messagetemplate", "outboundmessage", "receivedmessage"],
    "partner_api": ["apikey", "apirequestlog", "idempotencyrecord"],
    "portal": ["portalchallenge", "portalsession"],
}


def _tables() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_read_by_the_sub_apps_after_it():
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE_THE_MOVE)
    try:
        old = executor.loader.project_state(BEFORE_THE_MOVE).apps
        tables_before = _tables()
        clinic = old.get_model("clinic", "Clinic").objects.create(
            name="Clínica Antiga", cnpj="11222333000181"
        )
        patient = old.get_model("clinic", "Patient").objects.create(
            clinic=clinic,
            full_name="Paciente Antigo",
            search_name="paciente antigo",
            phone="+5511999990000",
        )
        message = old.get_model("clinic", "OutboundMessage").objects.create(
            clinic=clinic,
            patient=patient,
            template="appointment_reminder",
            purpose="reminders",
            idempotency_key="migration-test",
            body="Olá",
        )
        key = old.get_model("clinic", "ApiKey").objects.create(
            clinic=clinic, name="Parceiro", prefix="old12345", key_hash="x" * 64
        )
        session = old.get_model("clinic", "PortalSession").objects.create(
            clinic=clinic, patient=patient, key_hash="y" * 64
        )
        content_type = old.get_model("contenttypes", "ContentType")
        permission = old.get_model("auth", "Permission")
        group = old.get_model("auth", "Group").objects.create(name="Antigo")
        view_message = permission.objects.get(
            codename="view_outboundmessage",
            content_type=content_type.objects.get(app_label="clinic", model="outboundmessage"),
        )
        group.permissions.add(view_message)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)

    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    from clinic.messaging.models import OutboundMessage
    from clinic.partner_api.models import ApiKey
    from clinic.portal.models import PortalSession

    # No table dropped by the move, and the moved models kept their tables. Migrations written
    # after the move (the record, the CRM, loyalty …) are unapplied on the way back to clinic
    # 0008 and create their tables again on the way forward: only those tables are new.
    assert tables_before <= _tables()
    assert {m._meta.db_table for m in (OutboundMessage, ApiKey, PortalSession)} <= tables_before
    assert OutboundMessage.objects.get(pk=message.pk).body == "Olá"
    assert ApiKey.objects.get(pk=key.pk).prefix == "old12345"
    assert PortalSession.objects.get(pk=session.pk).patient_id == patient.pk
    for label, models in MOVED.items():
        assert set(
            ContentType.objects.filter(app_label=label, model__in=models).values_list(
                "model", flat=True
            )
        ) == set(models)
        assert not ContentType.objects.filter(app_label="clinic", model__in=models).exists()
    grants = Group.objects.get(name="Antigo").permissions.values_list(
        "content_type__app_label", "codename"
    )
    assert list(grants) == [("messaging", "view_outboundmessage")]
