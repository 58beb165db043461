"""Personas shared by every test: two clinics, their staff and patients.

- ``clinic_a`` / ``clinic_b``: two tenants.
- ``receptionist_a``, ``manager_a``, ``admin_a``: staff of clinic A; ``receptionist_b``: of B.
- ``patient_a`` / ``patient_b``: a patient of each clinic.
- ``client_for(user)``: a test client signed in as that user.
- ``seeded_demo``: the demo (``seed_demo``) seeded once for a whole module (see below).

Speed. Passwords are hashed with MD5 here (PBKDF2's million rounds cost ~0.3 s a user).
``make test`` and CI run the suite in parallel with pytest-xdist (``-n auto --dist
loadgroup``); locally the test database is kept between runs (``--reuse-db``: new
migrations are applied to it; after editing or removing a migration, or after an
interrupted run, pass ``--create-db``). One file at a time: ``.venv/bin/pytest
tests/x/test_y.py`` runs in one process; add ``-n 2`` for more.

Parallel runs (xdist) — what a test must respect:

- Each worker has its own database (pytest-django appends ``_gw0``, ``_gw1`` … to the
  test database's name) and its own Redis databases for the cache and the Celery broker
  (``REDIS_URL`` and ``CELERY_BROKER_URL``: worker N uses the given database number
  + N × the span they cover, e.g. 0/1 → gw1 on 2/3; set before any test runs, in
  ``settings`` and in ``os.environ`` so that subprocesses inherit them). So
  ``cache.clear()`` (FLUSHDB) and a real Celery worker started by a test see only
  their own worker's data.
- A test that starts real processes (a Celery worker, gunicorn, …) takes free ports (bind
  to port 0) and is marked ``@pytest.mark.processes``; everything under ``tests/crash/``
  is marked so automatically. They all run on one xdist worker, one after another
  (``xdist_group("processes")``), beside the rest of the suite. The browser tests
  (``tests/e2e/``) likewise share one worker, one Chromium and one live server.
- Tests of one module that use ``seeded_demo`` run on one worker, so the demo is seeded
  once per module, not once per worker.
- Nothing else is shared between workers: a test writing files does so in ``tmp_path``.
"""

import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.test import Client

from clinic import services
from clinic.choices import MembershipRole
from clinic.models import Membership
from tests.clinic.factories import ClinicFactory, PatientFactory, UserFactory

#: The portal's personas (``portal_a``: patient A signed in; ``portal_client_for(patient)``),
#: used by the portal tests of every app.
pytest_plugins = ["tests.clinic.portal.fixtures"]

POSTGRES_ONLY = "PostgreSQL only: set DATABASE_URL=postgres://… to run it"

#: Tests that start real processes: one worker runs them, one after another.
PROCESSES_GROUP = "processes"
#: Directories whose every test is marked ``processes``.
PROCESSES_DIRS = ("crash",)
#: Browser tests: one worker, one Chromium.
BROWSER_DIRS = ("e2e",)


# --- Settings for tests, applied when this file is imported (before any test runs) ---------
# pytest-django has read config.settings by then; what is set here is what every test,
# and every subprocess a test starts (through os.environ), sees.


def _redis_db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def _with_redis_db(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


def _redis_databases_for_this_worker(worker: int) -> dict[str, str]:
    """``REDIS_URL`` and a Redis ``CELERY_BROKER_URL`` moved to this xdist worker's own
    database numbers: the given ones + worker × their span (0/1 → gw1 on 2/3, gw2 on 4/5;
    20/21 → gw1 on 22/23). gw0, and a run without xdist, keep the given ones."""
    from django.conf import settings

    urls = {
        name: getattr(settings, name, "")
        for name in ("REDIS_URL", "CELERY_BROKER_URL")
        if getattr(settings, name, "").startswith(("redis://", "rediss://"))
    }
    if not urls or worker == 0:
        return {}
    numbers = [_redis_db(url) for url in urls.values()]
    span = max(numbers) - min(numbers) + 1
    return {name: _with_redis_db(url, _redis_db(url) + worker * span) for name, url in urls.items()}


def _check_redis_database_exists(url: str) -> None:
    """Redis has 16 databases unless configured otherwise: say so plainly when this
    worker's number is past the last one, instead of failing test by test."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.ResponseError as exc:  # "DB index is out of range"
        raise pytest.UsageError(
            f"{url}: {exc}. Each pytest-xdist worker takes its own Redis databases; run "
            "fewer workers (-n 2) or give REDIS_URL / CELERY_BROKER_URL lower numbers."
        ) from exc
    except redis.RedisError:
        pass  # Redis down: the tests that need it say so themselves
    finally:
        client.close()


def _configure_settings_for_tests() -> None:
    from django.conf import settings
    from django.contrib.auth import hashers

    # PBKDF2's rounds are a production cost; every UserFactory and seed_demo user pays it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()

    # Staff security (clinic.accounts): tests sign in with ``client.force_login`` and
    # travel in time, so the second factor, re-authentication and session limits are off
    # for the suite; tests/clinic/accounts and the browser tests of staff sign-in turn them
    # on with the ``staff_security`` fixture below.
    settings.CUIDAR_MFA_REQUIRED = False
    settings.CUIDAR_REAUTH_REQUIRED = False
    settings.CUIDAR_SESSION_LIMITS = False

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1" … under xdist
    moved = _redis_databases_for_this_worker(int(worker[2:]) if worker[2:].isdigit() else 0)
    for name, url in moved.items():
        _check_redis_database_exists(url)
        setattr(settings, name, url)
        os.environ[name] = url  # a Celery worker or manage.py started by a test inherits it
        if name == "REDIS_URL":
            settings.CACHES["default"]["LOCATION"] = url
        else:
            from config.celery import app

            app.conf.broker_url = url


_configure_settings_for_tests()


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the groups
def pytest_collection_modifyitems(config, items):
    """Groups for ``--dist loadgroup`` (see the docstring): real processes, browser tests
    and the modules seeding the demo once each run on one worker."""
    # Schemathesis gives its one item per API operation the same node id; xdist keys its
    # work by node id and would run only the first. Each gets its own, which its name
    # already has ("…says[GET /api/v1/services/]").
    seen: dict[str, int] = {}
    for item in items:
        seen[item.nodeid] = seen.get(item.nodeid, 0) + 1
    for item in items:
        original = getattr(item, "originalname", None) or ""
        if seen[item.nodeid] > 1 and original and item.name.startswith(original + "["):
            _set_nodeid(item, item.nodeid + item.name[len(original) :])
    in_loadgroup_worker = hasattr(config, "workerinput") and config.getvalue("loadgroup")
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            parts = item.path.relative_to(config.rootpath).parts
            directory = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
            if directory in PROCESSES_DIRS:
                item.add_marker(pytest.mark.processes)
            if item.get_closest_marker("processes"):
                item.add_marker(pytest.mark.xdist_group(PROCESSES_GROUP))
            elif directory in BROWSER_DIRS:
                item.add_marker(pytest.mark.xdist_group("browser"))
            elif "seeded_demo" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(item.module.__name__))
        group = item.get_closest_marker("xdist_group")
        if in_loadgroup_worker and group and "@" not in item.nodeid.rpartition("]")[2]:
            # xdist 3.8 writes the "@group" suffix to an attribute pytest 9 no longer reads
            # (the groups were silently ignored): written here where pytest reads it.
            name = group.args[0] if group.args else group.kwargs.get("name", "default")
            _set_nodeid(item, f"{item.nodeid}@{name}")


def _set_nodeid(item, nodeid: str) -> None:
    try:
        from _pytest.nodeid import coerce_node_id  # pytest 9: a structured id in ``_id``
    except ImportError:
        item._nodeid = nodeid
    else:
        item._id = coerce_node_id(nodeid)


def pytest_runtest_setup(item):
    # .ci/run fails the build if this reason shows up in its report.
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip(POSTGRES_ONLY)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: throttle histories, flags and cached tokens
    are keyed by ids that repeat from test to test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline in tests (a test that needs a real worker turns this off)."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


def _staff(clinic, role, username):
    user = UserFactory(username=username)
    services.membership_save(membership=Membership(user=user, clinic=clinic, role=role))
    user.refresh_from_db()
    return user


@pytest.fixture
def clinic_a(db):
    return ClinicFactory(name="Clínica Alfa")


@pytest.fixture
def clinic_b(db):
    return ClinicFactory(name="Clínica Beta")


@pytest.fixture
def receptionist_a(clinic_a):
    return _staff(clinic_a, MembershipRole.RECEPTIONIST, "recepcao_a")


@pytest.fixture
def manager_a(clinic_a):
    return _staff(clinic_a, MembershipRole.MANAGER, "gerente_a")


@pytest.fixture
def admin_a(clinic_a):
    return _staff(clinic_a, MembershipRole.ADMIN, "admin_a")


@pytest.fixture
def receptionist_b(clinic_b):
    return _staff(clinic_b, MembershipRole.RECEPTIONIST, "recepcao_b")


@pytest.fixture
def superuser(db):
    return UserFactory(username="operador", is_staff=True, is_superuser=True)


@pytest.fixture
def patient_a(clinic_a):
    return PatientFactory(clinic=clinic_a, full_name="Maria José Araújo", cpf="52998224725")


@pytest.fixture
def patient_b(clinic_b):
    return PatientFactory(clinic=clinic_b, full_name="Bruno Beta Costa")


@pytest.fixture
def staff_security(settings):
    """Production's staff security: second factor, re-authentication, session limits."""
    settings.CUIDAR_MFA_REQUIRED = True
    settings.CUIDAR_REAUTH_REQUIRED = True
    settings.CUIDAR_SESSION_LIMITS = True
    return settings


@pytest.fixture
def client_for(db):
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture(scope="module")
def seeded_demo(request, django_db_setup, django_db_blocker):
    """The demo (``seed_demo``) seeded once for the whole module, in a transaction rolled
    back after the module's last test; each test (with ``db``) works in a savepoint of it,
    so what one test changes the next does not see. For non-transactional tests only.
    The module may set ``DEMO_PATIENTS`` (default 40)."""
    from django.core.management import call_command
    from django.db import transaction
    from django.test import override_settings

    patients = getattr(request.module, "DEMO_PATIENTS", 40)
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with override_settings(DEBUG=True), open(os.devnull, "w") as quiet:
                call_command("seed_demo", patients=patients, stdout=quiet)
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)
