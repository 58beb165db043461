# Issue 18: MessageTemplate, OutboundMessage and ReceivedMessage move from clinic to this
# app. Their tables stay as they are (``db_table = "clinic_<model>"``): this migration
# changes Django's state only (no SQL), after clinic's 0009 took them out of clinic's state;
# then the content types follow, so permissions, group grants and admin log entries keep
# pointing at the same models.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MODELS = ["messagetemplate", "outboundmessage", "receivedmessage"]


def _move_content_types(apps, schema_editor, *, old, new):
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        # A partial run (``migrate clinic`` on this code) may have created the new app's
        # content types at its post_migrate: they are empty, the old ones carry the
        # permissions and history, so the new ones give way.
        if content_types.filter(app_label=old, model=model).exists():
            content_types.filter(app_label=new, model=model).delete()
    content_types.filter(app_label=old, model__in=MODELS).update(app_label=new)


def content_types_forwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, old="clinic", new="messaging")


def content_types_backwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, old="messaging", new="clinic")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("clinic", "0009_move_messaging_models"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReceivedMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('channel', models.CharField(choices=[('whatsapp', 'WhatsApp'), ('sms', 'SMS'), ('email', 'E-mail'), ('phone', 'Phone call')], max_length=20, verbose_name='channel')),
                        ('from_address', models.CharField(max_length=255, verbose_name='from')),
                        ('sender_name', models.CharField(blank=True, max_length=255, verbose_name='sender name')),
                        ('text', models.TextField(blank=True, verbose_name='text')),
                        ('provider', models.CharField(blank=True, max_length=40, verbose_name='provider')),
                        ('provider_message_id', models.CharField(blank=True, max_length=255, verbose_name='provider message id')),
                        ('source_key', models.CharField(editable=False, max_length=100, unique=True)),
                        ('received_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='received at')),
                        ('action', models.CharField(choices=[('none', 'Nothing: waiting for reception'), ('confirmed', 'Confirmed the appointment'), ('cancelled', 'Cancelled the appointment'), ('cancel_refused', 'Cancellation refused: too late, reception alerted'), ('reschedule_link', 'Sent a link to reschedule'), ('no_appointment', 'No upcoming appointment: answered politely'), ('opted_out', 'Opted out of this channel'), ('unknown_sender', 'Unknown number')], default='none', max_length=20, verbose_name='what was done')),
                        ('action_detail', models.JSONField(blank=True, default=dict, editable=False)),
                        ('needs_reply', models.BooleanField(default=False, verbose_name='needs a person')),
                        ('answered_at', models.DateTimeField(blank=True, null=True, verbose_name='answered at')),
                        ('answered_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='answered by')),
                        ('clinic', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='clinic.clinic', verbose_name='clinic')),
                        ('patient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='received_messages', to='clinic.patient', verbose_name='patient')),
                    ],
                    options={
                        'verbose_name': 'message received',
                        'verbose_name_plural': 'messages received',
                        'db_table': 'clinic_receivedmessage',
                        'ordering': ['-received_at', '-pk'],
                    },
                ),
                migrations.CreateModel(
                    name='OutboundMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('template', models.CharField(max_length=40, verbose_name='template')),
                        ('purpose', models.CharField(choices=[('utility', 'Service messages (reminders, confirmations)'), ('marketing', 'Marketing and promotions'), ('data_sharing', 'Sharing data with partners')], max_length=20, verbose_name='purpose')),
                        ('idempotency_key', models.CharField(max_length=200, unique=True, verbose_name='idempotency key')),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('sent', 'Sent'), ('delivered', 'Delivered'), ('read', 'Read'), ('failed', 'Failed'), ('not_sent', 'Not sent (no consented channel)'), ('uncertain', 'Uncertain (may have been sent)')], db_index=True, default='queued', max_length=12, verbose_name='status')),
                        ('only_channel', models.CharField(blank=True, choices=[('whatsapp', 'WhatsApp'), ('sms', 'SMS'), ('email', 'E-mail'), ('phone', 'Phone call')], max_length=20, verbose_name='only on channel')),
                        ('channel', models.CharField(blank=True, choices=[('whatsapp', 'WhatsApp'), ('sms', 'SMS'), ('email', 'E-mail'), ('phone', 'Phone call')], max_length=20, verbose_name='channel')),
                        ('to_address', models.CharField(blank=True, max_length=255, verbose_name='to')),
                        ('subject', models.CharField(blank=True, max_length=255, verbose_name='subject')),
                        ('body', models.TextField(verbose_name='text')),
                        ('template_variables', models.JSONField(blank=True, default=list, editable=False)),
                        ('meta_template_name', models.CharField(blank=True, editable=False, max_length=100)),
                        ('meta_language', models.CharField(blank=True, editable=False, max_length=10)),
                        ('provider', models.CharField(blank=True, max_length=40, verbose_name='provider')),
                        ('provider_message_id', models.CharField(blank=True, max_length=255, verbose_name='provider message id')),
                        ('attempts', models.JSONField(blank=True, default=list, verbose_name='attempts')),
                        ('attempt_count', models.PositiveSmallIntegerField(default=0, verbose_name='delivery rounds')),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='next attempt')),
                        ('in_flight_at', models.DateTimeField(blank=True, null=True, verbose_name='sending since')),
                        ('in_flight_channel', models.CharField(blank=True, editable=False, max_length=20)),
                        ('in_flight_provider', models.CharField(blank=True, editable=False, max_length=40)),
                        ('error', models.TextField(blank=True, verbose_name='why not sent / failed')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                        ('sent_at', models.DateTimeField(blank=True, null=True, verbose_name='sent at')),
                        ('delivered_at', models.DateTimeField(blank=True, null=True, verbose_name='delivered at')),
                        ('read_at', models.DateTimeField(blank=True, null=True, verbose_name='read at')),
                        ('failed_at', models.DateTimeField(blank=True, null=True, verbose_name='failed at')),
                        ('clinic', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='clinic.clinic', verbose_name='clinic')),
                        ('patient', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='outbound_messages', to='clinic.patient', verbose_name='patient')),
                        ('sent_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='written by')),
                        ('in_reply_to', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='replies', to='messaging.receivedmessage', verbose_name='in reply to')),
                    ],
                    options={
                        'verbose_name': 'message sent',
                        'verbose_name_plural': 'messages sent',
                        'db_table': 'clinic_outboundmessage',
                        'ordering': ['-created_at', '-pk'],
                    },
                ),
                migrations.CreateModel(
                    name='MessageTemplate',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=40, verbose_name='template')),
                        ('body', models.TextField(help_text='Plain text; variables like {{ first_name }} are filled in.', verbose_name='text')),
                        ('subject', models.CharField(blank=True, help_text='Used for e-mail only.', max_length=200, verbose_name='e-mail subject')),
                        ('meta_template_name', models.CharField(blank=True, help_text='The approved template this message maps to at Meta; empty keeps the default.', max_length=100, verbose_name='WhatsApp (Meta) template name')),
                        ('meta_language', models.CharField(default='pt_BR', max_length=10, verbose_name='WhatsApp (Meta) template language')),
                        ('is_active', models.BooleanField(default=True, help_text='Inactive: the default text is used.', verbose_name='active')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                        ('clinic', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='clinic.clinic', verbose_name='clinic')),
                    ],
                    options={
                        'verbose_name': 'message template',
                        'verbose_name_plural': 'message templates',
                        'db_table': 'clinic_messagetemplate',
                        'ordering': ['name'],
                        'constraints': [models.UniqueConstraint(fields=('clinic', 'name'), name='message_template_unique_per_clinic', violation_error_message='This clinic already has its own text for this template.')],
                    },
                ),
                migrations.AddIndex(
                    model_name='receivedmessage',
                    index=models.Index(fields=['clinic', 'patient', '-received_at'], name='received_patient_idx'),
                ),
                migrations.AddIndex(
                    model_name='receivedmessage',
                    index=models.Index(condition=models.Q(('answered_at__isnull', True), ('needs_reply', True)), fields=['clinic', '-received_at'], name='received_unanswered_idx'),
                ),
                migrations.AddIndex(
                    model_name='outboundmessage',
                    index=models.Index(fields=['clinic', 'patient', '-created_at'], name='outbound_patient_idx'),
                ),
                migrations.AddIndex(
                    model_name='outboundmessage',
                    index=models.Index(fields=['provider', 'provider_message_id'], name='outbound_provider_idx'),
                ),
                migrations.AddIndex(
                    model_name='outboundmessage',
                    index=models.Index(fields=['status', 'next_attempt_at'], name='outbound_retry_idx'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_forwards, content_types_backwards),
    ]
