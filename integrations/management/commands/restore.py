"""``manage.py restore …``: bring the database back from a backup (docs/backups.md).

PostgreSQL (pgBackRest), with PostgreSQL stopped on the target directory:

    restore --to "2026-12-06T14:30:00-03:00" --pg-path /var/lib/postgresql/15/main --delta
    restore --latest --pg-path /srv/restored        (a copy beside the live one)

SQLite (the embedded default), with web, worker and beat stopped:

    restore --latest --yes          the newest copy (its SHA-256 checked first)
    restore --copy cuidar-20261206T050000000000Z.sqlite3 --yes
"""

from django.core.management.base import BaseCommand, CommandError

from integrations.backups.config import backup_method, setting
from integrations.backups.errors import BackupError
from integrations.backups.services import operator, restore_pgbackrest, restore_sqlite

from .backup import parse_time


class Command(BaseCommand):
    help = "Restore the database from a backup, to a point in time or to the latest."

    def add_arguments(self, parser):
        when = parser.add_mutually_exclusive_group(required=True)
        when.add_argument("--to", dest="target", help="A time with its zone (ISO 8601).")
        when.add_argument("--latest", action="store_true", help="As far as the backups go.")
        when.add_argument("--copy", help="SQLite: the copy's file name (`backup list`).")
        parser.add_argument(
            "--pg-path",
            help="PostgreSQL: the (stopped) data directory to restore into "
            "(default CUIDAR_BACKUP_PG_DATA, the live cluster).",
        )
        parser.add_argument(
            "--delta",
            action="store_true",
            help="PostgreSQL: restore over an existing data directory, rewriting only what "
            "differs (faster; required to restore in place).",
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, target=None, latest=False, copy=None, pg_path=None, **options):
        method = backup_method()
        try:
            if method == "sqlite":
                if target:
                    raise CommandError("SQLite copies restore whole: use --latest or --copy.")
                self._confirm(options, "This replaces the database with the copy.")
                run = restore_sqlite(copy_name=copy, triggered_by=operator())
                self.stdout.write(self.style.SUCCESS(f"Restored {run.label} (checksum ok)."))
                return
            if method != "pgbackrest":
                raise CommandError("Backups are off (CUIDAR_BACKUP_METHOD).")
            if copy:
                raise CommandError("--copy is for SQLite; use --to or --latest.")
            path = pg_path or setting("PG_DATA")
            self._confirm(options, f"This restores PostgreSQL's files into {path}.")
            record = restore_pgbackrest(
                pg_path=path,
                target=parse_time(target) if target else None,
                delta=options["delta"],
                triggered_by=operator(),
            )
        except BackupError as exc:
            detail = f"\n{exc.output}" if exc.output else ""
            raise CommandError(f"{exc.message}{detail}") from exc
        self.stdout.write(self.style.SUCCESS(f"Restored into {path} in {record['seconds']:.1f} s."))
        self.stdout.write(
            "Start PostgreSQL on it; it replays the archive "
            + (f"up to {target}" if target else "to its end")
            + ", then opens for writes. Then run `manage.py backup status`: it records "
            "the restore in the audit trail and checks the archive again."
        )

    def _confirm(self, options, message: str) -> None:
        if options["yes"]:
            return
        answer = input(f"{message} Type 'yes' to go on: ")
        if answer.strip().lower() != "yes":
            raise CommandError("Nothing was restored.")
