"""The default clinical templates (clinic/records/default_templates.py) for the clinics that
existed before them; new clinics get them when created (clinic.records.receivers)."""

from django.db import migrations


def install(apps, schema_editor):
    from clinic.records.template_services import install_default_templates

    for clinic in apps.get_model("clinic", "Clinic").objects.all():
        install_default_templates(clinic, apps=apps)


class Migration(migrations.Migration):

    dependencies = [
        ("records", "0003_load_cid10"),
    ]

    operations = [
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
