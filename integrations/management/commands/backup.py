"""``manage.py backup …``: the operator's backup commands (docs/backups.md).

backup configure [--print]   write pgbackrest.conf from the settings; print what
                             postgresql.conf needs; create the stanza
backup run [--kind full|diff|incr]   take a backup now, then verify it
backup list                  the backups in the repository (or the SQLite copies)
backup check                 pgbackrest check: the archive works end to end
backup verify                every backup file's checksum read back
backup drill [--to TIME]     restore into a scratch database and check it (RTO, RPO)
backup status                the last backup and drill, and what is late or failed
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from integrations.backups.config import PgBackRestConfig, backup_method
from integrations.backups.errors import BackupError
from integrations.backups.services import (
    backup_take,
    backup_verify,
    backups_watch,
    operator,
    pgbackrest,
    sqlite_dir,
)
from integrations.backups.sqlite import sqlite_copies


def parse_time(value: str):
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise CommandError(
            f"{value!r} is not a date and time with its zone, e.g. 2026-12-06T14:30:00-03:00"
        )
    return parsed


class Command(BaseCommand):
    help = "Back up the database, check and verify backups, run a restore drill."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        configure = sub.add_parser("configure", help="Write pgbackrest.conf from the settings.")
        configure.add_argument(
            "--print",
            dest="print_only",
            action="store_true",
            help="Print it (secrets included) instead.",
        )
        configure.add_argument("--no-stanza", action="store_true", help="Do not run stanza-create.")
        run = sub.add_parser("run", help="Take a backup now, then verify it.")
        run.add_argument("--kind", choices=["full", "diff", "incr"], default=None)
        sub.add_parser("list", help="The backups in the repository.")
        sub.add_parser("check", help="pgbackrest check (PostgreSQL).")
        sub.add_parser("verify", help="Read every backup back and compare its checksums.")
        drill = sub.add_parser("drill", help="Restore into a scratch database and check it.")
        drill.add_argument("--to", dest="target", help="Restore to this time (ISO 8601).")
        sub.add_parser("status", help="Last backup and drill; what is late or failed.")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except BackupError as exc:
            detail = f"\n{exc.output}" if getattr(exc, "output", "") else ""
            raise CommandError(f"{exc.message}{detail}") from exc

    def _configure(self, *, print_only=False, no_stanza=False, **_):
        config = PgBackRestConfig.from_settings()
        if print_only:
            self.stdout.write(config.render())
            return
        for problem in config.problems():
            self.stderr.write(self.style.WARNING(f"warning: {problem}"))
        written = config.write()
        from integrations.backups.cluster import default_run_as, give_to

        give_to(written, default_run_as())
        self.stdout.write(f"Wrote {written} (readable by its owner only).")
        self.stdout.write("\nAdd to postgresql.conf (then restart PostgreSQL):\n")
        self.stdout.write(config.render_postgresql())
        if not no_stanza and not config.problems():
            pgbackrest(config).stanza_create()
            self.stdout.write(self.style.SUCCESS(f"Stanza {config.stanza} is ready."))

    def _run(self, *, kind=None, **_):
        run = backup_take(kind=kind, triggered_by=operator())
        self.stdout.write(
            self.style.SUCCESS(
                f"{run.get_kind_display()} {run.label} taken and verified in {run.seconds:.1f} s."
            )
        )

    def _list(self, **_):
        if backup_method() == "sqlite":
            copies = sqlite_copies(sqlite_dir())
            for copy in copies:
                self.stdout.write(f"{copy.name}\t{copy.size:,} bytes\tsha256 {copy.sha256[:16]}…")
            if not copies:
                self.stdout.write(f"No copies in {sqlite_dir()}.")
            return
        backups = pgbackrest().backups()
        for b in backups:
            self.stdout.write(
                f"{b.label}\t{b.type}\t{b.started_at:%Y-%m-%d %H:%M:%S}Z → "
                f"{b.stopped_at:%H:%M:%S}Z\tdatabase {b.size:,} B\trepository {b.repo_size:,} B"
                + ("\tERROR" if b.error else "")
            )
        if not backups:
            self.stdout.write("No backups in the repository.")

    def _check(self, **_):
        if backup_method() != "pgbackrest":
            raise CommandError("`backup check` is for pgBackRest (PostgreSQL).")
        pgbackrest().check()
        self.stdout.write(self.style.SUCCESS("The archive works: a WAL segment reached it."))

    def _verify(self, **_):
        run = backup_verify(triggered_by=operator())
        self.stdout.write(self.style.SUCCESS(f"Every backup verifies ({run.seconds:.1f} s)."))

    def _drill(self, *, target=None, **_):
        from integrations.backups.drill import drill_run

        run = drill_run(triggered_by=operator(), target=parse_time(target) if target else None)
        for check in run.details.get("checks", []):
            mark = "ok " if check["ok"] else "FAIL"
            self.stdout.write(f"  {mark} {check['name']}: {check['detail']}")
        line = f"RTO {run.rto_seconds:.1f} s, RPO " + (
            f"{run.rpo_seconds:.1f} s" if run.rpo_seconds is not None else "unknown"
        )
        if run.status != "succeeded":
            raise CommandError(f"The drill failed ({run.error}). {line}")
        self.stdout.write(self.style.SUCCESS(f"The drill passed. {line}"))

    def _status(self, **_):
        report = backups_watch()
        self.stdout.write(f"method: {report['method']}\tlevel: {report['level']}")
        for key in ("last_backup", "last_drill"):
            item = report.get(key)
            self.stdout.write(
                f"{key}: " + (", ".join(f"{k}={v}" for k, v in item.items()) if item else "none")
            )
        for problem in report["problems"]:
            self.stdout.write(self.style.WARNING(f"! {problem}"))
        if report["level"] == "critical":
            raise CommandError("Backups need attention now.")
