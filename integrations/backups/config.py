"""Backup settings, and pgBackRest's configuration rendered from them.

Everything comes from ``config/settings.py`` (``CUIDAR_BACKUP_*``, read from the
environment; docs/backups.md lists them). ``PgBackRestConfig.from_settings()`` gathers
them; ``render()`` writes the INI file pgBackRest reads, and ``postgresql_settings()`` the
lines PostgreSQL needs to archive its WAL through it. A test (or the drill) builds a
``PgBackRestConfig`` directly.

The rendered file holds the repository's keys and cipher pass: it is written readable by
its owner only (``write``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.conf import settings

CIPHER_TYPE = "aes-256-cbc"


def setting(name: str, default=None):
    """``settings.CUIDAR_BACKUP_<name>``."""
    return getattr(settings, f"CUIDAR_BACKUP_{name}", default)


def backup_method() -> str:
    """ "pgbackrest", "sqlite" or "off"."""
    return setting("METHOD", "off") or "off"


def backup_dir() -> Path:
    return Path(setting("DIR", Path(settings.BASE_DIR) / "var" / "backups"))


@dataclass(frozen=True)
class Repository:
    """One pgBackRest repository: S3-compatible storage (``type="s3"``) or a directory
    (``type="posix"``). Both are encrypted with ``cipher_pass`` (aes-256-cbc)."""

    type: str  # "s3" | "posix"
    path: str = "/cuidar"
    cipher_pass: str = ""
    # S3-compatible storage (AWS S3, Cloudflare R2, MinIO, …)
    endpoint: str = ""
    bucket: str = ""
    region: str = "us-east-1"
    key: str = ""
    key_secret: str = ""
    uri_style: str = "host"  # "path" for MinIO and most self-hosted stores
    port: int | None = None
    verify_tls: bool = True
    ca_file: str = ""
    # Connect to this address instead of the endpoint's (the TLS name stays the endpoint's).
    storage_host: str = ""

    def options(self, index: int) -> dict[str, str]:
        p = f"repo{index}-"
        out = {f"{p}type": self.type, f"{p}path": self.path}
        if self.cipher_pass:
            out[f"{p}cipher-type"] = CIPHER_TYPE
            out[f"{p}cipher-pass"] = self.cipher_pass
        if self.type == "s3":
            out.update(
                {
                    f"{p}s3-endpoint": self.endpoint,
                    f"{p}s3-bucket": self.bucket,
                    f"{p}s3-region": self.region,
                    f"{p}s3-key": self.key,
                    f"{p}s3-key-secret": self.key_secret,
                    f"{p}s3-uri-style": self.uri_style,
                }
            )
            if self.port:
                out[f"{p}storage-port"] = str(self.port)
            if self.storage_host:
                out[f"{p}storage-host"] = self.storage_host
            if not self.verify_tls:
                out[f"{p}storage-verify-tls"] = "n"
            if self.ca_file:
                out[f"{p}storage-ca-file"] = self.ca_file
        return out


@dataclass(frozen=True)
class PgBackRestConfig:
    """What pgBackRest needs to know: the cluster (``pg_path`` and how to reach it), the
    repositories, retention, and where it keeps its logs, locks and spool."""

    stanza: str
    repositories: tuple[Repository, ...]
    pg_path: str
    pg_port: int = 5432
    pg_socket_path: str = "/var/run/postgresql"
    pg_user: str = "postgres"
    # Retention: full backups kept (count) and differential backups kept (count). With
    # weekly fulls, 4 fulls keep four weeks of point-in-time recovery (more than 14 days).
    retention_full: int = 4
    retention_full_type: str = "count"  # or "time": retention_full is then in days
    retention_diff: int = 14
    archive_timeout: int = 60  # seconds: the longest a commit waits to be archived (RPO)
    process_max: int = 2
    compress_type: str = "zst"
    log_path: str = "/var/log/pgbackrest"
    lock_path: str = "/tmp/pgbackrest"  # noqa: S108 - pgBackRest's own default
    spool_path: str = "/var/spool/pgbackrest"
    archive_async: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    config_path: str = "/etc/pgbackrest/pgbackrest.conf"

    @classmethod
    def from_settings(cls) -> PgBackRestConfig:
        """The configuration this installation's settings describe."""
        repos = []
        s3 = setting("S3", {}) or {}
        cipher = setting("CIPHER_PASS", "") or ""
        if s3.get("bucket"):
            repos.append(
                Repository(
                    type="s3",
                    path=s3.get("path") or "/cuidar",
                    cipher_pass=cipher,
                    endpoint=s3.get("endpoint") or "s3.amazonaws.com",
                    bucket=s3["bucket"],
                    region=s3.get("region") or "us-east-1",
                    key=s3.get("key", ""),
                    key_secret=s3.get("key_secret", ""),
                    uri_style=s3.get("uri_style") or "host",
                    port=s3.get("port") or None,
                    verify_tls=s3.get("verify_tls", True),
                    ca_file=s3.get("ca_file", ""),
                )
            )
        if setting("REPO2_PATH"):
            repos.append(Repository(type="posix", path=setting("REPO2_PATH"), cipher_pass=cipher))
        db = settings.DATABASES["default"]
        return cls(
            stanza=setting("STANZA", "cuidar"),
            repositories=tuple(repos),
            pg_path=setting("PG_DATA", "/var/lib/postgresql/15/main"),
            pg_port=int(db.get("PORT") or 5432),
            pg_socket_path=setting("PG_SOCKET_PATH", "/var/run/postgresql"),
            # pgBackRest needs a superuser (or a role granted backup rights), not the
            # application's role.
            pg_user=setting("PG_USER", "postgres"),
            retention_full=setting("RETENTION_FULL", 4),
            retention_full_type=setting("RETENTION_FULL_TYPE", "count"),
            retention_diff=setting("RETENTION_DIFF", 14),
            archive_timeout=setting("ARCHIVE_TIMEOUT", 60),
            process_max=setting("PROCESS_MAX", 2),
            # log, lock and spool: the Debian package's folders, which the postgres user
            # (who runs archive-push) can write.
            config_path=str(setting("PGBACKREST_CONFIG", "/etc/pgbackrest/pgbackrest.conf")),
        )

    def with_changes(self, **changes) -> PgBackRestConfig:
        return replace(self, **changes)

    def global_options(self) -> dict[str, str]:
        out = {}
        for index, repo in enumerate(self.repositories, start=1):
            out.update(repo.options(index))
            out[f"repo{index}-retention-full"] = str(self.retention_full)
            out[f"repo{index}-retention-full-type"] = self.retention_full_type
            out[f"repo{index}-retention-diff"] = str(self.retention_diff)
        out.update(
            {
                "process-max": str(self.process_max),
                "compress-type": self.compress_type,
                "log-path": self.log_path,
                "lock-path": self.lock_path,
                "spool-path": self.spool_path,
                "log-level-console": "warn",
                "log-level-file": "info",
                # A backup starts at once (an immediate checkpoint), not at the next one.
                "start-fast": "y",
                "archive-async": "y" if self.archive_async else "n",
            }
        )
        out.update(self.extra)
        return out

    def stanza_options(self) -> dict[str, str]:
        return {
            "pg1-path": self.pg_path,
            "pg1-port": str(self.pg_port),
            "pg1-socket-path": self.pg_socket_path,
            "pg1-user": self.pg_user,
        }

    def render(self) -> str:
        """pgbackrest.conf."""
        lines = [
            "# Written by `manage.py backup configure` from Cuidar's settings (CUIDAR_BACKUP_*).",
            "# It holds the repository keys and cipher pass: keep it readable by its owner only.",
            "[global]",
            *(f"{k}={v}" for k, v in self.global_options().items()),
            "",
            f"[{self.stanza}]",
            *(f"{k}={v}" for k, v in self.stanza_options().items()),
            "",
        ]
        return "\n".join(lines)

    def archive_command(self) -> str:
        return f"pgbackrest --config={self.config_path} --stanza={self.stanza} archive-push %p"

    def postgresql_settings(self) -> dict[str, str]:
        """The postgresql.conf lines that archive every WAL segment through pgBackRest,
        at least every ``archive_timeout`` seconds (the RPO)."""
        return {
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": self.archive_command(),
            "archive_timeout": f"{self.archive_timeout}s",
            "max_wal_senders": "3",
        }

    def render_postgresql(self) -> str:
        lines = ["# Cuidar: continuous WAL archiving through pgBackRest (docs/backups.md)."]
        lines += [f"{k} = '{v}'" for k, v in self.postgresql_settings().items()]
        return "\n".join(lines) + "\n"

    def write(self, path: str | os.PathLike | None = None) -> Path:
        """Write the configuration, readable by its owner only; returns its path."""
        target = Path(path or self.config_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(self.render())
        os.chmod(target, 0o600)
        return target

    def problems(self) -> list[str]:
        """What keeps this configuration from giving encrypted off-site backups."""
        found = []
        if not self.repositories:
            found.append(
                "no repository: set CUIDAR_BACKUP_S3_BUCKET (and its endpoint and keys) "
                "or CUIDAR_BACKUP_REPO2_PATH"
            )
        for index, repo in enumerate(self.repositories, start=1):
            if not repo.cipher_pass:
                found.append(f"repo{index} is not encrypted: set CUIDAR_BACKUP_CIPHER_PASS")
            if repo.type == "s3" and not (repo.key and repo.key_secret):
                found.append(f"repo{index}: the S3 key and secret are not set")
        return found
