"""Create the staff role groups with their permissions, and make consents append-only in
the database itself on PostgreSQL (LGPD evidence must not be edited or erased)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from clinic.append_only import append_only_trigger


def create_role_groups(apps, schema_editor):
    from clinic.roles import role_groups_sync

    # Permissions are normally created after the whole migrate run; create them now so the
    # groups can be given theirs in this migration.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    role_groups_sync(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
        using=schema_editor.connection.alias,
    )


def remove_role_groups(apps, schema_editor):
    from clinic.roles import ROLE_GROUPS

    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_GROUPS.values()).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_role_groups, remove_role_groups),
        append_only_trigger("clinic_consent"),
    ]
