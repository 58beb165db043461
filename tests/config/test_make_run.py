"""`make run`'s processes (web, Celery worker, beat) stop once and cleanly on Ctrl-C or SIGTERM.

Runs `make serve` (what `make run` starts after migrating and seeding) for real on a scratch
SQLite database and var/ folder, waits for /health/, then does what a terminal does on
Ctrl-C (SIGINT to the whole foreground process group) or what .ci/run does (SIGTERM to it).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120  # seconds; three Django processes start on a loaded 2-core machine
STOP_TIMEOUT = 20  # honcho sends SIGKILL 5 s after the first process stopped

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process tree from Linux's /proc"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2) as response:
            return response.status
    except OSError:
        return 0


def _parents() -> dict[int, int]:
    """pid → parent pid of every process, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(pid: int) -> set[int]:
    parents = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not read its status


@pytest.fixture
def embedded_env(tmp_path):
    """The embedded default in a scratch var/: no PostgreSQL, Redis or broker from CI."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PORT", "MAKEFLAGS"}
    }
    env["CUIDAR_VAR_DIR"] = str(tmp_path / "var")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    return env


@pytest.mark.parametrize(
    "stop",
    [signal.SIGINT, signal.SIGTERM],
    ids=["ctrl-c in the terminal", "kill -TERM -- -pgid as .ci/run does"],
)
def test_stopping_make_run_stops_web_worker_and_beat_once_and_cleanly(stop, embedded_env, tmp_path):
    port = _free_port()
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        # Its own session, as a terminal gives `make run` its own foreground process group.
        run = subprocess.Popen(
            ["make", "--no-print-directory", "serve", f"PORT={port}"],
            cwd=ROOT,
            env=embedded_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while _health(port) != 200:
            assert run.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.5)
        while "celery@" not in log_path.read_text(errors="replace") or "beat: Starting" not in (
            log_path.read_text(errors="replace")
        ):
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.5)
        processes = _descendants(run.pid)
        # make, its shell or honcho, and at least web (autoreloader + server) and worker.
        assert len(processes) >= 4, processes

        os.killpg(run.pid, stop)  # what a terminal does on Ctrl-C: the whole process group
        stopped_at = time.monotonic()
        while left := {pid for pid in processes if _alive(pid)}:
            assert time.monotonic() - stopped_at < STOP_TIMEOUT, (
                f"still running {STOP_TIMEOUT} s after Ctrl-C: {left}\n"
                + log_path.read_text(errors="replace")
            )
            time.sleep(0.2)
        run.wait(timeout=STOP_TIMEOUT)
    finally:
        for pid in [run.pid, *locals().get("processes", ())]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        run.wait(timeout=10)

    output = log_path.read_text(errors="replace")
    assert "Segmentation fault" not in output
    assert output.count("Warm shutdown") == 1, output
    assert _health(port) == 0  # nothing answers any more
