"""The one way a backup tool (pgbackrest, initdb, pg_ctl, psql) is run.

Every command has a timeout, its output captured and logged (the tools redact their
secrets; nothing here adds any to the command line: pgBackRest reads its keys from its
configuration file). PostgreSQL refuses to run as root, and pgBackRest must run as the user
who owns the cluster's files: when this process is root, commands that need it run as
``run_as`` (the ``postgres`` user by default) through ``runuser``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

from .errors import BackupError

logger = logging.getLogger("integrations.backups")

DEFAULT_TIMEOUT = 6 * 60 * 60  # a full backup of a large clinic may take hours


@dataclass(frozen=True)
class CommandResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 20) -> str:
        text = "\n".join(part for part in (self.stdout, self.stderr) if part.strip())
        return "\n".join(text.strip().splitlines()[-lines:])


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def as_user_prefix(user: str | None) -> list[str]:
    """``runuser -u USER --`` when this process is root and another user is wanted."""
    if not user or not is_root() or user == "root":
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise BackupError(f"cannot run as {user}: runuser is not installed")
    return [runuser, "-u", user, "--"]


def run(
    args: list[str],
    *,
    as_user: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: dict[str, str] | None = None,
    check: bool = True,
    cwd: str | None = None,
) -> CommandResult:
    """Run ``args``; raise ``BackupError`` with the output's tail when it fails (``check``)
    or times out."""
    full = [*as_user_prefix(as_user), *args]
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - fixed programs, arguments from settings
            full,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BackupError(f"{args[0]} is not installed: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackupError(
            f"{args[0]} {args[1] if len(args) > 1 else ''} took longer than {timeout:.0f} s",
            output=str(exc.stdout or "")[-2000:],
        ) from exc
    result = CommandResult(
        tuple(full), done.returncode, done.stdout, done.stderr, time.monotonic() - started
    )
    logger.info("%s exited %s in %.1f s", " ".join(args[:3]), result.returncode, result.seconds)
    if check and not result.ok:
        raise BackupError(
            f"{' '.join(args[:1] + [a for a in args[1:] if not a.startswith('-')][:1])} "
            f"failed (exit {result.returncode})",
            output=result.tail(),
        )
    return result
