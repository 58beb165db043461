"""What clinic's core does on domain events: the audit trail records what happened to a
clinic's data elsewhere (imported by ``ClinicConfig.ready``)."""

from __future__ import annotations

from integrations.events import subscriber

from .audit import audit_record
from .models import AuditEntry

_BACKUP_ACTIONS = {
    "backup.completed": AuditEntry.Action.BACKUP,
    "backup.restored": AuditEntry.Action.RESTORE,
    "backup.drill_completed": AuditEntry.Action.RESTORE_DRILL,
}


@subscriber("backup.completed", "backup.restored", "backup.drill_completed")
def audit_backup(event, delivery):
    """A backup copied, a restore replaced, or a drill read this clinic's data (with every
    other clinic's): the clinic's audit trail says so (issue 27)."""
    payload = event.payload
    audit_record(
        clinic=event.clinic_id,
        action=_BACKUP_ACTIONS[event.event_type],
        actor_kind=AuditEntry.Actor.SYSTEM,
        actor_label=payload.get("triggered_by", "") or "backup",
        details={k: v for k, v in payload.items() if k != "triggered_by"},
    )
