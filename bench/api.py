"""The partner API under load: gunicorn with 2 workers on PostgreSQL (and Redis, as in
production: throttle counters, the key cache and the request-log buffer live there) with
the million appointments of ``bench/scheduling.py``, 32 concurrent connections.

Load comes from ``wrk`` (C, two threads), not from Python threads: a Python client would
take a large share of the two CPUs that gunicorn and PostgreSQL need, and would flatten the
difference between a cheap and an expensive endpoint. Each scenario runs for a fixed time
after a short warm-up; wrk reports p50/p95/p99 latency, requests per second and statuses.
Measured in one run, each next to the same wrk hitting a bare Django JSON view served by the
same gunicorn (the framework floor), and two more floors (``bench/api_urls.py``) that say
where the gap to it comes from: the partner floor, a constant answer behind the partner
API's per-request machinery (DRF, key and scope, per-key throttle, request log; no query);
and the data floor, a bare Django view answering the list's page (same rows, fields and
formats) with hand-written SQL and nothing else.

1. ``GET /api/v1/availability`` for one professional and one day (random future days:
   5,000 requests drawn from 1,750 distinct questions, so repeats are answered from the
   availability cache, as a partner site's visitors would be); and the same with no two
   requests alike (windows shifted by a random number of seconds, up to 6 h: every
   answer computed).
2. ``GET /api/v1/appointments/`` for one professional and one week, 50 a page.
3. ``POST /api/v1/appointments/``: distinct free slots found beforehand, each posted once
   with a fresh patient (201), or 409 when the slot went meanwhile; the bookings are
   deleted afterwards.

Each scenario also reports the CPU time the gunicorn workers and their PostgreSQL backends
spent per request (``cpu_ms_per_request``, from /proc): unlike rates and latencies, it
barely moves when other work shares the CPUs. Afterwards the API request log is flushed and
counted: every answered request must have its ``ApiRequestLog`` row (``request_log``:
answered by wrk ≤ logged).

Targets (issue 8): p95 < 100 ms for reads, < 150 ms for booking, and the appointment list
at ≥ 40 % of the floor's throughput. wrk, gunicorn and PostgreSQL share this machine's CPUs.
Needs PostgreSQL (BENCH_DATABASE_URL as in bench/scheduling.py), Redis (BENCH_REDIS_URL,
default redis://127.0.0.1:6379/12) and ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``).
Run: ``make bench`` or ``python bench/api.py``; prints a JSON object.
"""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.scheduling as data  # noqa: E402  (sets the benchmark database first)

CLIENTS = 32  # concurrent connections
WRK_THREADS = 2
WORKERS = 2  # gunicorn workers, as the issue says
WORKER_CLASS = os.environ.get("BENCH_API_WORKER_CLASS", "sync")
WORKER_THREADS = int(os.environ.get("BENCH_API_WORKER_THREADS", "1"))
WARMUP_SECONDS = 2
READ_SECONDS = 10
BOOKING_SECONDS = 5
READ_PATHS = 5000  # distinct random URLs per read scenario, cycled
BOOKINGS = 3000  # distinct free slots offered: more than 5 s of booking can use
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

# One request per line of the file named by the first argument, the lines dealt out to the
# threads in turn and cycled. GET: the line is the path; POST: the line is the JSON body
# sent to the script's URL. done() prints one JSON line: latency percentiles (µs), counts.
WRK_SCRIPT = r"""
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local file, nthreads = args[1], tonumber(args[4])
  method, key = args[2], args[3]
  local all = {}
  for line in io.lines(file) do all[#all + 1] = line end
  mine = {}
  for i = id + 1, #all, nthreads do mine[#mine + 1] = all[i] end
  if #mine == 0 then mine = all end
  headers = {}
  if key ~= "-" then headers["Authorization"] = "Bearer " .. key end
  if method == "POST" then headers["Content-Type"] = "application/json" end
  idx, sent = 0, 0
  s2xx, s409, s4xx, s5xx, sother = 0, 0, 0, 0, 0
end
function request()
  idx = idx % #mine + 1
  sent = sent + 1
  if method == "POST" then
    return wrk.format("POST", wrk.path, headers, mine[idx])
  end
  return wrk.format("GET", mine[idx], headers)
end
function response(status, headers, body)
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status == 409 then s409 = s409 + 1
  elseif status >= 400 and status < 500 then s4xx = s4xx + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
end
function done(summary, latency, requests)
  local c = {s2xx = 0, s409 = 0, s4xx = 0, s5xx = 0, sother = 0, sent = 0}
  for _, t in ipairs(threads) do
    for name, _ in pairs(c) do c[name] = c[name] + (t:get(name) or 0) end
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"timeouts": %d, "s2xx": %d, "s409": %d, "s4xx": %d, "s5xx": %d, "sother": %d, ' ..
    '"sent": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, c.s2xx, c.s409, c.s4xx, c.s5xx,
    c.sother, c.sent))
end
"""


def require_tools() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "bench/api.py needs wrk, the HTTP load generator "
            "(Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)."
        )
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise SystemExit(
            f"bench/api.py needs Redis at {REDIS_URL} (BENCH_REDIS_URL): {exc}"
        ) from None
    return wrk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> dict:
    from bench._production import PRODUCTION

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DEBUG": "False",
        "SECRET_KEY": "bench-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CUIDAR_FERNET_KEYS": PRODUCTION["CUIDAR_FERNET_KEYS"],
        "SECURE_SSL_REDIRECT": "False",
        "CUIDAR_API_RATE": "100000000/min",
        # Connections kept for the whole run: a backend replaced mid-scenario would take
        # its CPU time with it (cpu_ms_per_request reads the backends it saw at the start).
        "CONN_MAX_AGE": "3600",
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": "memory://",
    }


def start_gunicorn(port: int, env: dict) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(WORKERS),
        "--worker-class", WORKER_CLASS, "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "--backlog", "2048",
    ]  # fmt: skip
    if WORKER_CLASS == "gthread":
        command += ["--threads", str(WORKER_THREADS)]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/bench/floor", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not start")


def run_wrk(
    wrk: str, workdir: Path, url: str, lines: list[str], *, seconds: int, method="GET", key=None
) -> dict:
    """``lines``: paths (GET) or JSON bodies (POST to ``url``), dealt to the wrk threads."""
    script = workdir / "api.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    requests_file = workdir / "requests.txt"
    requests_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(
        [
            wrk, "-t", str(WRK_THREADS), "-c", str(CLIENTS), "-d", f"{seconds}s",
            "--timeout", "30s", "-s", str(script), url,
            "--", str(requests_file), method, key or "-", str(WRK_THREADS),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    seconds_run = raw["duration_us"] / 1e6
    statuses = {
        label: raw[name]
        for name, label in (
            ("s2xx", "2xx"),
            ("s409", "409"),
            ("s4xx", "other 4xx"),
            ("s5xx", "5xx"),
            ("sother", "other"),
        )
        if raw[name]
    }
    errors = {
        name: raw[name]
        for name in ("connect_errors", "read_errors", "write_errors", "timeouts")
        if raw[name]
    }
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 1),
        "per_second": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p95_ms": round(raw["p95_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "statuses": statuses,
        **({"errors": errors} if errors else {}),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_processes(master: subprocess.Popen) -> dict[str, list[int]]:
    """The gunicorn workers, and the PostgreSQL backends serving the benchmark database
    (the workers' persistent connections), whose CPU time each scenario reports."""
    from django.db import connection

    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master.pid:
                workers.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        backends = [pid for (pid,) in cursor.fetchall()]
    return {"gunicorn": workers, "postgresql": backends}


def scenario(wrk, workdir, base, path_or_paths, *, seconds, server, key=None, bodies=None) -> dict:
    """Warm up, then measure. GET: ``path_or_paths`` is the list of paths; POST: the path,
    and ``bodies`` the JSON bodies (the first 5 % warm up, the rest are measured).

    Besides wrk's view, the CPU time the gunicorn workers and their PostgreSQL backends
    spent per request: unlike latency and rate, it barely moves when other work shares the
    machine's CPUs."""
    if bodies is None:
        run_wrk(wrk, workdir, base, path_or_paths, seconds=WARMUP_SECONDS, key=key)
        args, kwargs = (base, path_or_paths), {"seconds": seconds, "key": key}
    else:
        url = base + path_or_paths
        warm = max(len(bodies) // 20, CLIENTS)
        run_wrk(wrk, workdir, url, bodies[:warm], seconds=1, method="POST", key=key)
        args, kwargs = (url, bodies[warm:]), {"seconds": seconds, "method": "POST", "key": key}
    pids = server_processes(server)
    before = {name: sum(map(_cpu_seconds, group)) for name, group in pids.items()}
    result = run_wrk(wrk, workdir, *args, **kwargs)
    after = {name: sum(map(_cpu_seconds, group)) for name, group in pids.items()}
    # A process gone meanwhile took its CPU time with it: no figure rather than a wrong one.
    gone = {name for name, group in pids.items() if not all(map(_alive, group))}
    result["cpu_ms_per_request"] = {
        name: None
        if name in gone
        else round((after[name] - before[name]) * 1000 / max(result["requests"], 1), 2)
        for name in pids
    }
    return result


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def main() -> dict:
    wrk = require_tools()
    data.ensure_database()
    os.environ["REDIS_URL"] = REDIS_URL  # this process flushes the request-log buffer
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from clinic.models import Patient, Professional
    from clinic.partner_api.keys import api_key_create
    from clinic.partner_api.models import ApiKey, ApiRequestLog
    from clinic.partner_api.request_log import api_request_log_flush
    from clinic.partner_api.scopes import API_SCOPES
    from integrations.models import Event
    from scheduling.availability import slot_list_available
    from scheduling.models import Appointment

    call_command("migrate", verbosity=0)
    clinic, service = data.generate()
    ApiKey.objects.filter(clinic=clinic, name="bench-api").delete()
    key, secret = api_key_create(clinic=clinic, name="bench-api", scopes=list(API_SCOPES))
    rng = random.Random(11)  # noqa: S311 - sampling, not secrets
    professionals = list(
        Professional.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True)
    )
    today = timezone.localdate()
    days = [today + timedelta(days=d) for d in range(1, 36)]

    def day_start(day):
        return data.local_midnight(day)

    def availability_path(distinct=False):
        day = rng.choice(days)
        # distinct: a window starting a few seconds (up to 6 h) after midnight, so that no
        # two requests ask the same thing and none is answered from the cache.
        shift = timedelta(seconds=rng.randrange(6 * 3600)) if distinct else timedelta(0)
        query = {
            "service": service.pk,
            "professional": rng.choice(professionals),
            "start": (day_start(day) + shift).isoformat(),
            "end": (day_start(day + timedelta(days=1)) + shift).isoformat(),
        }
        return "/api/v1/availability?" + urlencode(query)

    def list_query():
        day = rng.choice(days)
        return {
            "professional": rng.choice(professionals),
            "start_from": day_start(day).isoformat(),
            "start_to": day_start(day + timedelta(days=7)).isoformat(),
        }

    # The same weeks for the list and for its data floor (bench/api_urls.py).
    list_queries = [list_query() for _ in range(READ_PATHS)]
    list_paths = [
        "/api/v1/appointments/?" + urlencode({**q, "page_size": 50}) for q in list_queries
    ]
    textbook_paths = [
        "/bench/textbook/appointments/?" + urlencode({**q, "page_size": 50}) for q in list_queries
    ]
    list_floor_paths = [
        "/bench/list-floor?" + urlencode({**q, "clinic": clinic.pk}) for q in list_queries
    ]

    # Booking: distinct free future slots, each posted once with a fresh patient.
    free, searched = [], set()
    earliest = timezone.now() + timedelta(hours=3)
    while len(free) < BOOKINGS and len(searched) < len(days):
        day = rng.choice([d for d in days if d not in searched])
        searched.add(day)
        free += [
            s
            for s in slot_list_available(
                clinic=clinic,
                service=service,
                start=day_start(day),
                end=day_start(day + timedelta(days=1)),
            )
            if s.start > earliest
        ]
    chosen = rng.sample(free, min(BOOKINGS, len(free)))
    patients = list(
        Patient.objects.filter(clinic=clinic, lead_source=f"{data.MARK}-booking")
        .order_by("pk")
        .values_list("pk", flat=True)[: len(chosen)]
    )
    bodies = [
        json.dumps(
            {
                "patient": patient,
                "professional": slot.professional_id,
                "service": service.pk,
                "start": slot.start.astimezone(data.TZ).isoformat(),
                "notes": data.MARK,
            }
        )
        for slot, patient in zip(chosen, patients, strict=True)
    ]

    started_at = datetime.now(data.TZ)
    port = free_port()
    server = start_gunicorn(port, server_env())
    try:
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            floor = scenario(
                wrk, workdir, base, ["/bench/floor"], seconds=READ_SECONDS, server=server
            )
            availability = scenario(
                wrk,
                workdir,
                base,
                [availability_path() for _ in range(READ_PATHS)],
                seconds=READ_SECONDS,
                server=server,
                key=secret,
            )
            uncached = scenario(
                wrk,
                workdir,
                base,
                [availability_path(distinct=True) for _ in range(READ_PATHS * 4)],
                seconds=READ_SECONDS,
                server=server,
                key=secret,
            )
            partner_floor = scenario(
                wrk,
                workdir,
                base,
                ["/bench/partner-floor"],
                seconds=READ_SECONDS,
                server=server,
                key=secret,
            )
            list_floor = scenario(
                wrk, workdir, base, list_floor_paths, seconds=READ_SECONDS, server=server
            )
            listing = scenario(
                wrk, workdir, base, list_paths, seconds=READ_SECONDS, server=server, key=secret
            )
            textbook = scenario(
                wrk, workdir, base, textbook_paths, seconds=READ_SECONDS, server=server, key=secret
            )
            booking = scenario(
                wrk,
                workdir,
                base,
                "/api/v1/appointments/",
                seconds=BOOKING_SECONDS,
                server=server,
                key=secret,
                bodies=bodies,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        flushed = api_request_log_flush()
        booked = Appointment.objects.filter(
            clinic=clinic, notes=data.MARK, created_at__gte=started_at - timedelta(minutes=1)
        )
        Event.objects.filter(
            clinic=clinic,
            event_type__in=["appointment.booked"],
            payload__appointment_id__in=list(booked.values_list("pk", flat=True)),
        ).delete()
        booked_count = booked.count()
        booked.delete()

    # Every request wrk saw answered is in the log (wrk stops counting in-flight requests
    # at the end of a run, so the log may hold a few more). Warm-ups are logged too.
    answered = sum(
        r["requests"] for r in (partner_floor, availability, uncached, listing, textbook, booking)
    )
    logged = ApiRequestLog.objects.filter(api_key=key).count()
    return {
        "data": {"appointments": Appointment.objects.filter(clinic=clinic).count()},
        "load": f"wrk, {WRK_THREADS} threads, {CLIENTS} connections",
        "gunicorn": {"workers": WORKERS, "worker_class": WORKER_CLASS}
        | ({"threads": WORKER_THREADS} if WORKER_CLASS == "gthread" else {}),
        "floor_bare_django_json": floor,
        "partner_floor_constant_answer": {
            **partner_floor,
            "share_of_floor_throughput": round(
                partner_floor["per_second"] / floor["per_second"], 2
            ),
        },
        "data_floor_bare_django_list_sql": {
            **list_floor,
            "share_of_floor_throughput": round(list_floor["per_second"] / floor["per_second"], 2),
        },
        "availability_one_professional_one_day": {
            **availability,
            "target_p95_ms": 100,
            "met": availability["p95_ms"] < 100,
        },
        "availability_never_the_same_query": {
            **uncached,
            "target_p95_ms": 100,
            "met": uncached["p95_ms"] < 100,
        },
        "appointment_list_one_week": {
            **listing,
            "target_p95_ms": 100,
            "met": listing["p95_ms"] < 100,
            "share_of_floor_throughput": round(listing["per_second"] / floor["per_second"], 2),
            "target_share": 0.4,
            "share_met": listing["per_second"] / floor["per_second"] >= 0.4,
            "share_of_data_floor_throughput": round(
                listing["per_second"] / list_floor["per_second"], 2
            ),
            "target_share_of_data_floor": 0.5,
            "times_the_textbook_drf_list": round(listing["per_second"] / textbook["per_second"], 2),
            "target_times_textbook": 3,
        },
        "textbook_drf_list_same_week": textbook,
        "booking": {
            **booking,
            "booked": booked_count,
            "target_p95_ms": 150,
            "met": booking["p95_ms"] < 150,
        },
        "request_log": {
            "answered_measured": answered,
            "logged_with_warmups": logged,
            "flushed_at_the_end": flushed,
            "complete": logged >= answered,
        },
    }


if __name__ == "__main__":
    print(json.dumps(main()))
