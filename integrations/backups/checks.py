"""What a restore drill checks on the restored database, and how other apps add checks.

A check is a function of a ``DrillContext`` returning a ``CheckResult`` (or ``None`` when it
has nothing to say). The restored database is a Django database alias (``ctx.alias``):
a check reads it with ``Model.objects.using(ctx.alias)``, never writing.

Built in: the migrations applied match the code's; the main tables' row counts are within
expectations of the live database's; the files that rows point to exist in the storage.
An app adds its own in a module named ``backup_checks.py`` (found at the first drill, like
``handlers.py``)::

    from integrations.backups.checks import CheckResult, drill_check

    @drill_check("records_hash_chains")
    def hash_chains_verify(ctx):
        broken = ...  # walk the chains in Encounter.objects.using(ctx.alias)
        return CheckResult.of(not broken, f"{len(broken)} broken chains", broken=broken[:10])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connections, models
from django.db.migrations.executor import MigrationExecutor
from django.utils.module_loading import autodiscover_modules

#: The tables whose row counts a drill compares with the live database's (model labels;
#: a label whose app is not installed is skipped).
DEFAULT_TABLES = (
    "clinic.Clinic",
    "clinic.Patient",
    "clinic.AuditEntry",
    "scheduling.Appointment",
    "billing.Payment",
    "integrations.Event",
)
#: Files checked at most per drill (each is one storage request).
MAX_FILE_REFERENCES = 2000


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""
    data: dict = field(default_factory=dict)

    @classmethod
    def of(cls, ok: bool, detail: str = "", **data) -> CheckResult:
        return cls(name="", ok=ok, detail=detail, data=data)

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "data": self.data}


@dataclass
class DrillContext:
    """What a check knows: the restored database's alias, the live row counts taken when
    the drill started (``expected_counts``, model label → count), and until when the
    restored data reach."""

    alias: str
    expected_counts: dict[str, int] = field(default_factory=dict)
    restored_until: datetime | None = None


Check = Callable[[DrillContext], "CheckResult | None"]
_checks: dict[str, Check] = {}
_discovered = False


def drill_check(name: str):
    """Register a check run by every restore drill."""

    def decorator(func: Check) -> Check:
        existing = _checks.get(name)
        if existing is not None and existing is not func:
            raise ValueError(f"drill check {name!r} is registered twice")
        _checks[name] = func
        return func

    return decorator


def unregister(name: str) -> None:
    """Forget a check (tests)."""
    _checks.pop(name, None)


def registered_checks() -> dict[str, Check]:
    global _discovered
    if not _discovered:
        autodiscover_modules("backup_checks")
        _discovered = True
    return dict(_checks)


def run_checks(ctx: DrillContext) -> list[CheckResult]:
    """Every registered check; one that raises counts as failed, with the error."""
    results = []
    for name, check in registered_checks().items():
        try:
            result = check(ctx)
        except Exception as exc:  # a broken check must not hide the others' results
            result = CheckResult.of(False, f"{exc.__class__.__name__}: {exc}")
        if result is not None:
            results.append(CheckResult(name, result.ok, result.detail, result.data))
    return results


def table_labels() -> list[str]:
    labels = getattr(settings, "CUIDAR_BACKUP_DRILL_TABLES", None) or DEFAULT_TABLES
    return [label for label in labels if _model(label) is not None]


def _model(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def row_counts(alias: str) -> dict[str, int]:
    """The main tables' row counts in a database."""
    return {label: _model(label)._base_manager.using(alias).count() for label in table_labels()}


# --- Built-in checks ------------------------------------------------------------------------
@drill_check("migrations")
def migrations_match_the_code(ctx: DrillContext) -> CheckResult:
    """Every migration of the code is applied in the restored database, and it has none
    the code does not know."""
    executor = MigrationExecutor(connections[ctx.alias])
    graph = executor.loader.graph
    plan = executor.migration_plan(graph.leaf_nodes())
    missing = [f"{m.app_label}.{m.name}" for m, _backwards in plan]
    applied = set(executor.recorder.applied_migrations())
    known = set(graph.nodes)
    # A squashed migration stands in the graph for those it replaces, which a database
    # migrated before the squash still lists as applied (django-otp-webauthn ships one).
    for migration in executor.loader.disk_migrations.values():
        known.update(tuple(key) for key in migration.replaces)
    unknown = sorted(f"{a}.{n}" for a, n in applied - known if a in _migrated_apps())
    ok = not missing and not unknown
    detail = (
        f"{len(applied)} migrations applied, as the code expects"
        if ok
        else f"{len(missing)} not applied, {len(unknown)} unknown to the code"
    )
    return CheckResult.of(ok, detail, not_applied=missing[:20], unknown=unknown[:20])


def _migrated_apps() -> set[str]:
    return {config.label for config in apps.get_app_configs()}


@drill_check("row_counts")
def row_counts_within_expectations(ctx: DrillContext) -> CheckResult:
    """Each main table has about as many rows as the live database had when the drill
    began: within ``CUIDAR_BACKUP_DRILL_TOLERANCE`` (a fraction) or
    ``CUIDAR_BACKUP_DRILL_SLACK`` rows, whichever is larger, and never empty when the live
    one is not. (The restored data are older than the live ones by the RPO.)"""
    tolerance = float(getattr(settings, "CUIDAR_BACKUP_DRILL_TOLERANCE", 0.05))
    slack = int(getattr(settings, "CUIDAR_BACKUP_DRILL_SLACK", 100))
    restored = row_counts(ctx.alias)
    off = {}
    for label, count in restored.items():
        expected = ctx.expected_counts.get(label)
        if expected is None:
            continue
        allowed = max(slack, int(expected * tolerance))
        if abs(count - expected) > allowed or (expected > 0 and count == 0):
            off[label] = {"restored": count, "expected": expected}
    detail = (
        f"{len(restored)} tables within expectations"
        if not off
        else ", ".join(
            f"{k}: {v['restored']} rows, expected ~{v['expected']}" for k, v in off.items()
        )
    )
    return CheckResult.of(not off, detail, counts=restored, off=off)


def _file_fields() -> list[tuple[type[models.Model], str]]:
    return [
        (model, f.name)
        for model in apps.get_models()
        for f in model._meta.concrete_fields
        if isinstance(f, models.FileField)
    ]


@drill_check("file_references")
def no_orphan_file_references(ctx: DrillContext) -> CheckResult:
    """Every file a restored row points to (FileField, ImageField) exists in the storage:
    a restore brings back the rows and the files they name."""
    checked = 0
    missing = []
    for model, name in _file_fields():
        values = (
            model._base_manager.using(ctx.alias)
            .exclude(**{name: ""})
            .exclude(**{f"{name}__isnull": True})
            .values_list(name, flat=True)
        )
        for value in values.iterator():
            if checked >= MAX_FILE_REFERENCES:
                break
            checked += 1
            storage = model._meta.get_field(name).storage or default_storage
            if not storage.exists(value):
                missing.append(f"{model._meta.label}.{name}: {value}")
    detail = (
        f"{checked} file references, all present"
        if not missing
        else f"{len(missing)} of {checked} file references point to no file"
    )
    return CheckResult.of(not missing, detail, checked=checked, missing=missing[:20])
