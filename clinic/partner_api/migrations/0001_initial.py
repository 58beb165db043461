# Issue 18: ApiKey, ApiRequestLog and IdempotencyRecord move here from the clinic app
# (clinic/migrations/0010_move_partner_api_models.py lets them go). State only: the tables
# keep their names (db_table) and their rows; then the content types follow, so that
# permissions, admin log entries and role groups keep pointing at the same models.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MODELS = ["apikey", "apirequestlog", "idempotencyrecord"]


def content_types_move(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label="clinic", model__in=MODELS
    ).update(app_label="partner_api")


def content_types_move_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label="partner_api", model__in=MODELS
    ).update(app_label="clinic")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("clinic", "0010_move_partner_api_models"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(help_text="Who uses it, e.g. Lab X.", max_length=100, verbose_name="name")),
                        ("prefix", models.CharField(editable=False, max_length=16, unique=True, verbose_name="prefix")),
                        ("key_hash", models.CharField(editable=False, max_length=64, unique=True)),
                        ("scopes", models.JSONField(default=list, verbose_name="scopes")),
                        ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
                        ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True, verbose_name="last used")),
                        ("expires_at", models.DateTimeField(blank=True, null=True, verbose_name="expires at")),
                        ("revoked_at", models.DateTimeField(blank=True, editable=False, null=True, verbose_name="revoked at")),
                        ("clinic", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="%(class)ss", to="clinic.clinic", verbose_name="clinic")),
                        ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL, verbose_name="created by")),
                    ],
                    options={
                        "verbose_name": "API key",
                        "verbose_name_plural": "API keys",
                        "db_table": "clinic_apikey",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="ApiRequestLog",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("method", models.CharField(max_length=10)),
                        ("path", models.CharField(max_length=255)),
                        ("status", models.PositiveSmallIntegerField()),
                        ("latency_ms", models.PositiveIntegerField()),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False)),
                        ("api_key", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="requests", to="partner_api.apikey")),
                        ("clinic", models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="clinic.clinic", verbose_name="clinic")),
                    ],
                    options={
                        "verbose_name": "API request",
                        "verbose_name_plural": "API requests",
                        "db_table": "clinic_apirequestlog",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="IdempotencyRecord",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=255)),
                        ("request_hash", models.CharField(max_length=64)),
                        ("in_flight", models.BooleanField(default=True)),
                        ("response_status", models.PositiveSmallIntegerField(null=True)),
                        ("response_body", models.TextField(blank=True)),
                        ("response_content_type", models.CharField(blank=True, max_length=100)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("api_key", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="partner_api.apikey")),
                    ],
                    options={
                        "db_table": "clinic_idempotencyrecord",
                        "constraints": [models.UniqueConstraint(fields=("api_key", "key"), name="idempotency_unique_key")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_move, content_types_move_back, elidable=False),
    ]
