"""Backups: pgBackRest's full backup and restore times (RTO) and the WAL archive's lag under
a write load (RPO), on a throwaway cluster.

    python bench/backup.py [--database NAME | --scale 10] [--seconds 60]

A throwaway cluster (initdb, a free port) archives to an encrypted local repository
(aes-256-cbc, zst, the production settings of integrations.backups.config). Its data is a
copy (``pg_dump``) of the million-appointment database of bench/scheduling.py
(``cuidar_bench_sched`` on 127.0.0.1) when it exists, or of ``--database``; otherwise
``pgbench -i --scale`` (scale 10: 1,000,000 rows, ~150 MB). Measured: the full backup; the
restore into another directory up to a writable database (RTO); during ``--seconds`` of
pgbench writes (TPC-B-like, 4 clients, in a database of their own), how far the last
archived WAL segment lags behind, sampled every second: the RPO a crash then would give.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from integrations.backups.cluster import Cluster, default_run_as, give_to  # noqa: E402
from integrations.backups.config import PgBackRestConfig, Repository  # noqa: E402
from integrations.backups.pgbackrest import PgBackRest  # noqa: E402
from integrations.backups.runner import run  # noqa: E402


def _existing(name: str) -> str | None:
    query = "SELECT datname FROM pg_database"
    found = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", query],  # noqa: S607 - the client
        capture_output=True,
        text=True,
        check=False,
    )
    return name if name in found.stdout.split() else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument(
        "--database", help="copy this database (pg_dump from DATABASE_URL's server)"
    )
    parser.add_argument("--archive-timeout", type=int, default=60)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cuidar-bench-backup-"))
    work.chmod(0o755)
    run_as = default_run_as()
    source = Cluster(work / "source", run_dir=work / "run", run_as=run_as)
    restored = Cluster(work / "restored", run_dir=work / "run-restored", run_as=run_as)
    try:
        source.initdb()
        for name in ("repo", "log", "lock", "spool"):
            (work / name).mkdir()
        config = PgBackRestConfig(
            stanza="bench",
            repositories=(
                Repository(
                    type="posix",
                    path=str(work / "repo"),
                    cipher_pass="bench-pass",  # noqa: S106 - a throwaway repository
                ),
            ),
            pg_path=str(source.data_dir),
            pg_port=source.port,
            pg_socket_path=str(source.run_dir),
            archive_timeout=args.archive_timeout,
            log_path=str(work / "log"),
            lock_path=str(work / "lock"),
            spool_path=str(work / "spool"),
            config_path=str(work / "pgbackrest.conf"),
        )
        config.write()
        give_to(work, run_as)
        source.configure(config.postgresql_settings())
        source.start()
        tool = PgBackRest(config, run_as=run_as)
        tool.stanza_create()
        bindir = Path(source.bindir)
        connect = ["-h", str(source.run_dir), "-p", str(source.port), "-U", "postgres"]
        began = time.monotonic()
        if args.database:
            dump = work / "dump.sql"
            run(
                [
                    str(bindir / "pg_dump"),
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-f",
                    str(dump),
                    args.database,
                ]
            )
            dump.chmod(0o644)
            source.psql("CREATE DATABASE bench")
            run(
                [str(bindir / "psql"), *connect, "-d", "bench", "-qX", "-f", str(dump)],
                as_user=run_as,
            )
        else:
            source.psql("CREATE DATABASE bench")
            run(
                [str(bindir / "pgbench"), *connect, "-i", "-q", "-s", str(args.scale), "bench"],
                as_user=run_as,
            )
        load_seconds = time.monotonic() - began
        size = int(source.psql("SELECT pg_database_size('bench')"))

        began = time.monotonic()
        backup = tool.backup("full")
        backup_seconds = time.monotonic() - began

        restored.data_dir.mkdir()
        restored.data_dir.chmod(0o700)
        give_to(restored.data_dir, run_as)
        began = time.monotonic()
        tool.restore(pg_path=str(restored.data_dir))
        restore_files = time.monotonic() - began
        restored.start(options={"archive_mode": "off"})
        restored.wait_until_promoted()
        rto = time.monotonic() - began
        restored.remove()

        # Archive lag under writes: pgbench (TPC-B-like) for --seconds, sampled every second.
        source.psql("CREATE DATABASE load")
        run([str(bindir / "pgbench"), *connect, "-i", "-q", "-s", "1", "load"], as_user=run_as)
        load = subprocess.Popen(
            [*(["runuser", "-u", run_as, "--"] if run_as else []), str(bindir / "pgbench"),
             *connect, "-c", "4", "-T", str(args.seconds), "-n", "load"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        lags = []
        while load.poll() is None:
            lag = source.psql(
                "SELECT extract(epoch FROM now() - coalesce(last_archived_time, now())) "
                "FROM pg_stat_archiver"
            )
            lags.append(float(lag))
            time.sleep(1)
        output = load.stdout.read()
        tps = next(
            (
                line.split("=")[1].split()[0]
                for line in output.splitlines()
                if line.startswith("tps")
            ),
            "",
        )
        lags.sort()
        result = {
            "database": args.database or f"pgbench scale {args.scale}",
            "database_bytes": size,
            "load_seconds": round(load_seconds, 1),
            "backup_full_seconds": round(backup_seconds, 1),
            "backup_repo_bytes": backup.repo_size,
            "restore_files_seconds": round(restore_files, 1),
            "rto_seconds": round(rto, 1),
            "write_load_tps": tps,
            "archive_lag_p50_seconds": round(lags[len(lags) // 2], 1) if lags else None,
            "archive_lag_max_seconds": round(lags[-1], 1) if lags else None,
            "archive_timeout": args.archive_timeout,
        }
        print(json.dumps(result))  # one line: bench/run.py reads the last
    finally:
        restored.remove()
        source.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
