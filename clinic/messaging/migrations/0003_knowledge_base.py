"""The assistant's knowledge base (issue 24); on PostgreSQL, the unaccent and pg_trgm
extensions its full-text search uses (both trusted extensions: the database owner may create
them)."""

import django.db.models.deletion
from clinic.kernel.postgres import KeptTrigramExtension, KeptUnaccentExtension
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0013_audit_encaixe_action'),
        ('messaging', '0002_assistant_conversations'),
    ]

    operations = [
        # No-ops on SQLite; IF NOT EXISTS on PostgreSQL (clinic.records enables pg_trgm too).
        KeptUnaccentExtension(),
        KeptTrigramExtension(),
        migrations.CreateModel(
            name='KnowledgeEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('category', models.CharField(choices=[('faq', 'Frequently asked question'), ('cancellation', 'Cancellation policy'), ('payment', 'Payment policy'), ('address', 'Address and directions'), ('hours', 'Opening hours'), ('other', 'Other')], default='faq', max_length=20, verbose_name='category')),
                ('title', models.CharField(help_text='How a patient would ask it, e.g. “Vocês aceitam convênio?”', max_length=200, verbose_name='question or title')),
                ('body', models.TextField(help_text="The answer, in the clinic's words. No prices of services: the assistant reads them from the catalogue.", verbose_name='answer')),
                ('keywords', models.CharField(blank=True, help_text='Synonyms and abbreviations, separated by spaces or commas.', max_length=300, verbose_name='other words patients use')),
                ('active', models.BooleanField(default=True, verbose_name='active')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('clinic', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='clinic.clinic', verbose_name='clinic')),
            ],
            options={
                'verbose_name': 'knowledge base entry',
                'verbose_name_plural': 'knowledge base',
                'ordering': ['category', 'title'],
                'indexes': [models.Index(fields=['clinic', 'active'], name='knowledge_clinic_active_idx')],
            },
        ),
    ]
