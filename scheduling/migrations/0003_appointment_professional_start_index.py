"""An index on (professional, start): a professional's appointments in a period (the API's
list, the agenda by professional) read one index instead of combining two.

On PostgreSQL it is built CONCURRENTLY, so a clinic with millions of appointments keeps
booking while it builds (hence a non-atomic migration); elsewhere it is a plain index."""

from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("scheduling", "0002_no_double_booking"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="appointment",
            index=models.Index(fields=["professional", "start"], name="appt_prof_start_idx"),
        ),
    ]
