"""The Celery application, configured from Django settings (``CELERY_*``), with the task
routes and the periodic jobs of every app — defined here, in one place.

Periodic jobs are synced into django-celery-beat's tables when beat starts, so they can be
seen and paused in the admin; a pause survives restarts (the sync never touches
``enabled``). Their times are in ``CELERY_TIMEZONE`` (the clinics' default zone); the daily
jobs at a time of the clinic's day run hourly and serve each clinic at its own local time.
"""

import os
from pathlib import Path

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cuidar")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

#: Patient-facing messages (reminders, confirmations, sign-in codes, dunning) are sent from
#: this queue, which production gives workers of its own (compose.yaml ``worker-patients``):
#: they never wait behind partner webhooks (``integrations``, ``integrations-retry``).
PATIENT_QUEUE = "notifications"

# The worker consumes every queue of CELERY_TASK_QUEUES unless started with --queues, so the
# embedded `make run` worker serves them all; production splits them (compose.yaml).
app.conf.task_routes = {
    "integrations.inbound_webhook_process": {"queue": "integrations-high"},
    "integrations.outbox_dispatch": {"queue": "default"},
    "integrations.outbox_drain": {"queue": "default"},
    # delivery_run picks its queue per call: default (in-process handlers), integrations
    # (partner webhooks) or integrations-retry (see integrations.outbox.enqueue); sent
    # without one, it is a partner's.
    "integrations.delivery_run": {"queue": "integrations"},
    "integrations.outbox_sweep": {"queue": "default"},
    "integrations.cleanup": {"queue": "integrations-low"},
    # A test ping waits on a partner's URL: a partner worker's job, not a web request's.
    "integrations.webhook_ping": {"queue": "integrations"},
    "scheduling.waitlist_offers_expire": {"queue": "default"},
    "config.metrics_snapshot": {"queue": "default"},
    "clinic.message_deliver": {"queue": PATIENT_QUEUE},
    "clinic.messages_deliver_batch": {"queue": PATIENT_QUEUE},
    "clinic.messages_retry": {"queue": PATIENT_QUEUE},
    "clinic.portal_code_send": {"queue": PATIENT_QUEUE},
    "clinic.birthdays_greet": {"queue": "integrations-low"},
    "crm.campaigns_tick": {"queue": "integrations-low"},
    "crm.reactivation": {"queue": "integrations-low"},
    "crm.leads_retention": {"queue": "integrations-low"},
    "clinic.api_request_log_purge": {"queue": "integrations-low"},
    "accounts.staff_sessions_cleanup": {"queue": "integrations-low"},
    "scheduling.reminders_48h": {"queue": PATIENT_QUEUE},
    "scheduling.reminders_eve": {"queue": PATIENT_QUEUE},
    "scheduling.no_shows_detect": {"queue": "default"},
    "billing.packages_expiry": {"queue": PATIENT_QUEUE},
    "billing.dunning": {"queue": PATIENT_QUEUE},
    "billing.invoices_poll": {"queue": "integrations"},
    "billing.payments_reconcile": {"queue": "integrations"},
    # Backups (issue 27): long jobs; pgBackRest must run where PostgreSQL's files are, so
    # only the worker there consumes this queue (compose.yaml worker-backup,
    # docs/backups.md).
    "integrations.backup_run": {"queue": "backups"},
    "integrations.backup_drill": {"queue": "backups"},
    "integrations.backups_watch": {"queue": "default"},
}

app.conf.beat_schedule = {
    # every minute: re-enqueue lost or due deliveries, bury exhausted ones
    "outbox-sweep": {"task": "integrations.outbox_sweep", "schedule": 60.0},
    # every 5 minutes: inbound webhooks stored but never processed (task lost) go again
    "inbound-webhooks-requeue": {
        "task": "integrations.inbound_webhook_requeue_stale",
        "schedule": 300.0,
    },
    # every minute: waitlist offers past their time expire; the slot goes to the next in line
    "waitlist-offers-expire": {"task": "scheduling.waitlist_offers_expire", "schedule": 60.0},
    # Daily jobs at a time of the clinic's day run every hour on the hour, and each run
    # serves the clinics where it is that time (``local_hours``, in their own time zone).
    # 08:00 and 18:00: remind appointments 24–48 h ahead (lembrete_consulta)
    "reminders-48h": {
        "task": "scheduling.reminders_48h",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [8, 18]},
    },
    # 18:00: remind tomorrow's unconfirmed appointments (lembrete_vespera)
    "reminders-eve": {
        "task": "scheduling.reminders_eve",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [18]},
    },
    # every 30 minutes: past appointments with no arrival become no-shows (falta_consulta)
    "no-shows-detect": {
        "task": "scheduling.no_shows_detect",
        "schedule": crontab(minute="*/30"),
    },
    # 08:00 (the clinic's): birthday greetings, opted-in patients only (aniversario)
    "birthdays": {
        "task": "clinic.birthdays_greet",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [8]},
    },
    # every minute: CRM campaigns start when scheduled and send their next batch
    "crm-campaigns": {"task": "crm.campaigns_tick", "schedule": 60.0},
    # Mondays 10:00 (the clinic's): the reactivation campaign (seed 004, ``0 10 * * 1``)
    "crm-reactivation": {
        "task": "crm.reactivation",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [10], "local_weekday": 0},
    },
    # Sundays 03:15: leads never converted are anonymised after 2 years (LGPD, seed 004)
    "crm-leads-retention": {
        "task": "crm.leads_retention",
        "schedule": crontab(minute=15, hour=3, day_of_week="sunday"),
    },
    # 09:00 (the clinic's): packages expiring within 15 days are warned (pacote_vencendo)
    "packages-expiry": {
        "task": "billing.packages_expiry",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [9]},
    },
    # 09:00 (the clinic's): overdue charges are reminded at D+1, D+3, D+7 (cobranca)
    "dunning": {
        "task": "billing.dunning",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [9]},
    },
    # 02:00 (the clinic's): loyalty tiers re-evaluated (downgrades), birthday bonus
    "loyalty-tiers": {
        "task": "loyalty.tiers_evaluate",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [2]},
    },
    # 03:00 (the clinic's): loyalty points past their date expire (FIFO); 30-day notices
    "loyalty-expiry": {
        "task": "loyalty.points_expiry",
        "schedule": crontab(minute=0),
        "kwargs": {"local_hours": [3]},
    },
    # every hour at :45 (before 09:00 dunning): gateways asked about charges pending past due
    "payments-reconcile": {"task": "billing.payments_reconcile", "schedule": crontab(minute=45)},
    # every 10 minutes: NFS-e still processing are asked about (providers without webhooks)
    "invoices-poll": {"task": "billing.invoices_poll", "schedule": crontab(minute="*/10")},
    # every minute: queue depths, provider health, KPIs for /metrics
    "metrics": {"task": "config.metrics_snapshot", "schedule": 60.0},
    # every minute: messages whose providers were down (or whose task was lost) go again
    "messages-retry": {"task": "clinic.messages_retry", "schedule": 60.0},
    # every minute: the partner API's request log buffered in Redis is written in bulk
    "api-request-log-flush": {"task": "clinic.api_request_log_flush", "schedule": 60.0},
    # 04:00: portal sign-in challenges (codes live 10 minutes) older than a day go
    "portal-challenges-purge": {
        "task": "clinic.portal_challenges_purge",
        "schedule": crontab(minute=0, hour=4),
    },
    # Sundays 03:30: the partner API's request log older than 90 days goes
    "api-request-log-purge": {
        "task": "clinic.api_request_log_purge",
        "schedule": crontab(minute=30, hour=3, day_of_week="sunday"),
    },
    # Sundays 03:15: staff sessions that ended unseen are closed, ended ones kept 90 days
    "staff-sessions-cleanup": {
        "task": "accounts.staff_sessions_cleanup",
        "schedule": crontab(minute=15, hour=3, day_of_week="sunday"),
    },
    # Sundays 03:00: retention of call logs, processed webhooks and delivered events
    "integrations-cleanup": {
        "task": "integrations.cleanup",
        "schedule": crontab(minute=0, hour=3, day_of_week="sunday"),
    },
    # --- Backups (issue 27, docs/backups.md), in the server's time zone ---
    # 02:00: full backup on Sundays (CUIDAR_BACKUP_FULL_WEEKDAY), differential the other
    # days (a SQLite copy on the embedded default), each verified after it is taken
    "backup": {"task": "integrations.backup_run", "schedule": crontab(minute=0, hour=2)},
    # Saturdays 04:00: restore drill: the latest backup restored into a scratch database,
    # checked, RTO and RPO recorded
    "backup-drill": {
        "task": "integrations.backup_drill",
        "schedule": crontab(minute=0, hour=4, day_of_week="saturday"),
    },
    # every hour at :20: a late or failed backup or drill is an alert (log and health page)
    "backups-watch": {"task": "integrations.backups_watch", "schedule": crontab(minute=20)},
}


@app.task(name="config.metrics_snapshot")
def metrics_snapshot_task() -> None:
    """Every minute: the operational metrics served at /metrics (config/metrics.py)."""
    from .metrics import metrics_snapshot

    metrics_snapshot()


@task_prerun.connect
def _drop_unusable_connections(task=None, **kwargs):
    """What Django does at the start of each request: close connections that broke (e.g.
    PostgreSQL restarted) or outlived CONN_MAX_AGE. Celery's own per-task close is
    relaxed by CELERY_DB_REUSE_MAX."""
    if task is not None and task.request.is_eager:
        return  # an eager task runs inside its caller's transaction: never close that
    from django.db import close_old_connections

    close_old_connections()


@app.on_after_configure.connect
def _make_filesystem_broker_folders(sender, **kwargs):
    """The filesystem transport (embedded default) needs its folders to exist."""
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = (sender.conf.broker_transport_options or {}).get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
