"""A throwaway PostgreSQL cluster: ``initdb`` / ``pg_ctl`` of the installed server, in a
directory of its own, on a free port, listening only on a Unix socket in a private folder.

The restore drill starts one on restored data; the integration test starts one to back up.
PostgreSQL refuses to run as root: when this process is root, the cluster's files belong to
``run_as`` (``postgres``) and its commands run as that user (``runner``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import time
from pathlib import Path

from .config import setting
from .errors import BackupError
from .runner import is_root, run


def pg_bindir() -> str:
    """Where the server's programs are: ``CUIDAR_BACKUP_PG_BINDIR``, else the newest
    ``/usr/lib/postgresql/*/bin`` (Debian), else the PATH's."""
    configured = setting("PG_BINDIR", "")
    if configured:
        return configured
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return str(Path(found[-1]).parent)
    located = shutil.which("pg_ctl")
    if located:
        return str(Path(located).resolve().parent)
    raise BackupError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def give_to(path: Path, user: str | None) -> None:
    """Make ``path`` (and what is in it) belong to ``user`` when we are root."""
    if not user or not is_root() or user == "root":
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def default_run_as() -> str | None:
    """The user PostgreSQL runs as when this process is root."""
    return (setting("RUN_AS", "postgres") or None) if is_root() else None


class Cluster:
    """One PostgreSQL cluster in ``data_dir``; its socket and log live in ``run_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        run_dir: Path,
        port: int | None = None,
        run_as: str | None = None,
        superuser: str = "postgres",
        bindir: str | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.run_dir = Path(run_dir)
        self.port = port or free_port()
        self.run_as = run_as
        self.superuser = superuser
        self.bindir = bindir or pg_bindir()
        self.started = False

    def _bin(self, name: str) -> str:
        return str(Path(self.bindir) / name)

    def prepare_dirs(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)
        give_to(self.run_dir, self.run_as)

    def initdb(self) -> None:
        """A new, empty cluster (trust authentication on its private socket only)."""
        self.prepare_dirs()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        give_to(self.data_dir, self.run_as)
        run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                self.superuser,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            as_user=self.run_as,
            timeout=300,
        )

    def configure(self, options: dict[str, str]) -> None:
        """Append ``options`` to postgresql.conf."""
        lines = "".join(f"{k} = '{v}'\n" for k, v in options.items())
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(lines)

    def _server_options(self, extra: dict[str, str]) -> str:
        options = {
            "port": str(self.port),
            "listen_addresses": "",
            "unix_socket_directories": str(self.run_dir),
            **extra,
        }
        return " ".join(f"-c {k}='{v}'" for k, v in options.items())

    def start(self, *, timeout: int = 600, options: dict[str, str] | None = None) -> None:
        """Start and wait until it accepts connections (after any recovery)."""
        self.prepare_dirs()
        run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.run_dir / "postgresql.log"),
                "-w",
                "-t",
                str(timeout),
                "-o",
                self._server_options(options or {}),
                "start",
            ],
            as_user=self.run_as,
            timeout=timeout + 30,
        )
        self.started = True

    def stop(self, *, mode: str = "fast") -> None:
        if not self.started:
            return
        run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
            as_user=self.run_as,
            timeout=300,
            check=False,
        )
        self.started = False

    def psql(self, sql: str, *, dbname: str = "postgres", timeout: float = 300) -> str:
        """Run ``sql``; its rows, one a line, columns separated by ``|``."""
        result = run(
            [
                self._bin("psql"),
                "-h",
                str(self.run_dir),
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                dbname,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtX",
                "-c",
                sql,
            ],
            as_user=self.run_as,
            timeout=timeout,
        )
        return result.stdout.strip()

    def wait_until_promoted(self, *, timeout: float = 600) -> None:
        """Recovery has ended and the cluster accepts writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.psql("SELECT pg_is_in_recovery()", timeout=30) == "f":
                    return
            except BackupError:
                pass  # without hot standby, no connection is accepted until recovery ends
            time.sleep(0.2)
        raise BackupError(f"the restored cluster was still recovering after {timeout:.0f} s")

    def django_settings(self, base: dict, *, dbname: str) -> dict:
        """A ``DATABASES`` entry for this cluster, like ``base`` (the default one)."""
        entry = dict(base)
        entry.update(
            {
                "NAME": dbname,
                "USER": self.superuser,
                "PASSWORD": "",
                "HOST": str(self.run_dir),
                "PORT": str(self.port),
                "CONN_MAX_AGE": 0,
                "CONN_HEALTH_CHECKS": False,
                "TEST": {},
            }
        )
        return entry

    def remove(self) -> None:
        """Stop it (at once) and delete its files."""
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
