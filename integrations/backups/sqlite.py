"""The embedded default's backups: SQLite's online backup API, each copy with its SHA-256.

A copy is taken while web, worker and beat keep writing (the backup API copies a
consistent snapshot page by page), checked with ``PRAGMA integrity_check``, and its
SHA-256 written beside it in ``sha256sum``'s format (``cuidar-….sqlite3.sha256``), so
``sha256sum -c`` checks it too. A restore refuses a copy whose checksum does not match.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import BackupError, ChecksumMismatch

PREFIX = "cuidar-"
SUFFIX = ".sqlite3"
CHUNK = 1 << 20


@dataclass(frozen=True)
class SqliteCopy:
    path: Path
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def taken_at(self) -> datetime:
        stamp = self.path.name.removeprefix(PREFIX).removesuffix(SUFFIX)
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _integrity_check(path: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (answer,) = connection.execute("PRAGMA integrity_check").fetchone()
    finally:
        connection.close()
    if answer != "ok":
        raise BackupError(f"{path.name} failed SQLite's integrity check: {answer}")


def sqlite_backup(*, source: Path, dest_dir: Path, now: datetime | None = None) -> SqliteCopy:
    """Copy the database at ``source`` into ``dest_dir`` (online), check it, and record its
    SHA-256 beside it."""
    now = now or datetime.now(UTC)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / f"{PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%S%f}Z{SUFFIX}"
    partial = final.with_name(final.name + ".part")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    _integrity_check(partial)
    digest = file_sha256(partial)
    os.replace(partial, final)
    _checksum_path(final).write_text(f"{digest}  {final.name}\n", encoding="utf-8")
    return SqliteCopy(final, digest, final.stat().st_size)


def recorded_sha256(path: Path) -> str:
    try:
        return _checksum_path(path).read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError) as exc:
        raise ChecksumMismatch(f"{path.name} has no recorded checksum") from exc


def sqlite_verify(path: Path) -> SqliteCopy:
    """The copy, if its SHA-256 is the one recorded when it was taken."""
    expected = recorded_sha256(path)
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"{path.name}: SHA-256 {actual[:12]}… is not the recorded {expected[:12]}…"
        )
    return SqliteCopy(path, actual, path.stat().st_size)


def sqlite_copies(dest_dir: Path) -> list[SqliteCopy]:
    """The copies in ``dest_dir``, oldest first (checksums as recorded, not recomputed)."""
    if not dest_dir.is_dir():
        return []
    found = []
    for path in sorted(dest_dir.glob(f"{PREFIX}*{SUFFIX}")):
        try:
            digest = recorded_sha256(path)
        except ChecksumMismatch:
            digest = ""
        found.append(SqliteCopy(path, digest, path.stat().st_size))
    return found


def sqlite_restore(*, copy: Path, target: Path) -> SqliteCopy:
    """Replace the database at ``target`` with ``copy``, after checking the copy's SHA-256
    and integrity. Uses the backup API in reverse, so processes that have ``target`` open
    see the restored data at their next transaction."""
    checked = sqlite_verify(copy)
    _integrity_check(copy)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return checked


def sqlite_prune(dest_dir: Path, *, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest copies; returns what was deleted."""
    copies = sqlite_copies(dest_dir)
    doomed = copies[: max(0, len(copies) - keep)]
    for copy in doomed:
        copy.path.unlink(missing_ok=True)
        _checksum_path(copy.path).unlink(missing_ok=True)
    return [c.path for c in doomed]
