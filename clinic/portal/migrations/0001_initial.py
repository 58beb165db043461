# Issue 18: the portal's models move here from clinic (clinic's 0011_move_portal_models)
# with their tables: the state is created, no table is (database_operations=[]). Their
# content types are renamed to this app's label, so permissions, the role groups' grants and
# admin log entries keep pointing at them.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MODELS = ["portalchallenge", "portalsession"]


def content_types_to_portal(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label="clinic", model__in=MODELS
    ).update(app_label="portal")


def content_types_to_clinic(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label="portal", model__in=MODELS
    ).update(app_label="clinic")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("clinic", "0011_move_portal_models"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PortalChallenge",
                    fields=[
                        ("id", models.UUIDField(editable=False, primary_key=True, serialize=False)),
                        ("identifier_hash", models.CharField(db_index=True, max_length=64)),
                        ("patient_ids", models.JSONField(default=list)),
                        ("code_hash", models.CharField(max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField()),
                        ("failed_attempts", models.PositiveSmallIntegerField(default=0)),
                        ("used_at", models.DateTimeField(blank=True, null=True)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                    ],
                    options={
                        "verbose_name": "portal sign-in code",
                        "verbose_name_plural": "portal sign-in codes",
                        "db_table": "clinic_portalchallenge",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="PortalSession",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("key_hash", models.CharField(editable=False, max_length=64, unique=True)),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="signed in at"),
                        ),
                        (
                            "last_seen_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="last seen"
                            ),
                        ),
                        (
                            "ended_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="ended at"),
                        ),
                        (
                            "ip",
                            models.GenericIPAddressField(
                                blank=True, null=True, verbose_name="IP address"
                            ),
                        ),
                        (
                            "user_agent",
                            models.CharField(blank=True, max_length=255, verbose_name="device"),
                        ),
                        (
                            "clinic",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="%(class)ss",
                                to="clinic.clinic",
                                verbose_name="clinic",
                            ),
                        ),
                        (
                            "patient",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="portal_sessions",
                                to="clinic.patient",
                                verbose_name="patient",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "portal session",
                        "verbose_name_plural": "portal sessions",
                        "db_table": "clinic_portalsession",
                        "ordering": ["-last_seen_at"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("ended_at__isnull", True)),
                                fields=["patient"],
                                name="portal_session_open_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_portal, content_types_to_clinic),
    ]
