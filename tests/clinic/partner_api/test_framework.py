"""The partner API's per-request machinery, made cheap without changing what it does: the
cached key (revocation and expiry still take effect at once), ``last_used_at`` written once
a minute, the request log buffered in Redis (nothing lost), the constant-cost throttle and
the lean appointment serializer."""

from datetime import timedelta

import pytest
import redis
import time_machine
from django.conf import settings
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from clinic.kernel import redis as shared_redis
from clinic.partner_api import _state, keys, request_log
from clinic.partner_api.keys import api_key_create, api_key_revoke
from clinic.partner_api.models import ApiKey, ApiRequestLog
from clinic.partner_api.request_log import LOG_BUFFER, LOG_FLUSH_AT, api_request_log_flush
from clinic.partner_api.tasks import api_request_log_flush_task, api_request_log_purge_task
from clinic.partner_api.throttling import ApiKeyThrottle
from scheduling.api import LIST_COLUMNS, AppointmentSerializer
from scheduling.choices import AppointmentStatus
from scheduling.models import Appointment
from tests.clinic.factories import RoomFactory
from tests.scheduling.factories import AppointmentFactory
from tests.scheduling.test_api import make_agenda

pytestmark = pytest.mark.django_db

SERVICES = "/api/v1/services/"


@pytest.fixture
def agenda(clinic_a):
    return make_agenda(clinic_a)


def client_with(secret: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture
def partner(clinic_a):
    key, secret = api_key_create(clinic=clinic_a, name="Lab", scopes=["availability:read"])
    return key, client_with(secret)


# --- The cached key -------------------------------------------------------------------------
def test_a_known_key_is_not_read_from_the_database_again(partner):
    _key, client = partner
    assert client.get(SERVICES).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(SERVICES).status_code == 200
    assert not [q for q in queries if "clinic_apikey" in q["sql"]]


def test_a_revoked_key_is_refused_at_once_despite_the_cache(partner):
    key, client = partner
    assert client.get(SERVICES).status_code == 200
    api_key_revoke(key=key)
    assert client.get(SERVICES).status_code == 401


def test_a_key_saved_with_an_earlier_expiry_is_refused_at_once(partner):
    key, client = partner
    assert client.get(SERVICES).status_code == 200
    key.expires_at = timezone.now() - timedelta(seconds=1)
    key.save(update_fields=["expires_at"])
    assert client.get(SERVICES).status_code == 401


def test_a_cached_key_is_refused_the_moment_it_expires(clinic_a):
    soon = timezone.now() + timedelta(seconds=2)
    _key, secret = api_key_create(
        clinic=clinic_a, name="Lab", scopes=["availability:read"], expires_at=soon
    )
    client = client_with(secret)
    assert client.get(SERVICES).status_code == 200
    with time_machine.travel(soon + timedelta(milliseconds=1)):
        assert client.get(SERVICES).status_code == 401


def test_a_deleted_key_is_refused_at_once(partner):
    key, client = partner
    assert client.get(SERVICES).status_code == 200
    ApiRequestLog.objects.filter(api_key=key).delete()
    key.delete()
    assert client.get(SERVICES).status_code == 401


def test_the_keys_of_a_deactivated_clinic_are_refused_at_once(partner, clinic_a):
    _key, client = partner
    assert client.get(SERVICES).status_code == 200
    clinic_a.is_active = False
    clinic_a.save()
    assert client.get(SERVICES).status_code == 401


def test_a_revocation_also_drops_the_copy_cached_before_its_commit(partner, monkeypatch):
    """A request that read the key while the revocation was not yet committed may cache
    the old row: the cached copy is dropped again after the commit."""
    key, client = partner
    dropped = []
    monkeypatch.setattr(keys.transaction, "on_commit", lambda fn, *a, **k: dropped.append(fn))
    api_key_revoke(key=key)
    stale = ApiKey.objects.select_related("clinic").get(pk=key.pk)
    stale.revoked_at = None
    _state.state_put(keys.key_cache_name(key.key_hash), stale, 60)
    for drop in dropped:
        drop()
    assert client.get(SERVICES).status_code == 401


# --- last_used_at ---------------------------------------------------------------------------
def test_last_used_is_written_at_most_once_a_minute(partner):
    key, client = partner
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.get(SERVICES)
        first = ApiKey.objects.get(pk=key.pk).last_used_at
        assert first is not None
        clock.shift(timedelta(seconds=30))
        with CaptureQueriesContext(connection) as queries:
            client.get(SERVICES)
        assert not [q for q in queries if q["sql"].startswith("UPDATE")]
        assert ApiKey.objects.get(pk=key.pk).last_used_at == first
        clock.shift(timedelta(seconds=31))
        _state.state_delete([f"api-key-used:{key.pk}"])  # Redis expires it itself
        client.get(SERVICES)
        assert ApiKey.objects.get(pk=key.pk).last_used_at == first + timedelta(seconds=61)


def test_last_used_is_written_once_even_when_the_cached_copy_is_stale(partner):
    """Another worker's cached copy may not know of the last write: the cache decides."""
    key, client = partner
    with time_machine.travel(timezone.now(), tick=False):
        client.get(SERVICES)
        _state.state_delete([keys.key_cache_name(key.key_hash)])
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=None)  # as a stale copy reads
        _state.state_put(
            keys.key_cache_name(key.key_hash),
            ApiKey.objects.select_related("clinic").get(pk=key.pk),
            60,
        )
        client.get(SERVICES)
        assert ApiKey.objects.get(pk=key.pk).last_used_at is None  # no second write


# --- The request log ------------------------------------------------------------------------
class FakeRedis:
    """The handful of Redis list and lock commands the log buffer uses, in memory."""

    def __init__(self):
        self.lists: dict[str, list[bytes]] = {}
        self.locked = False
        self.fail_push = False

    def rpush(self, name, value):
        if self.fail_push:
            raise redis.ConnectionError("down")
        items = self.lists.setdefault(name, [])
        items.append(value.encode() if isinstance(value, str) else value)
        return len(items)

    def lrange(self, name, start, end):
        items = self.lists.get(name, [])
        return list(items[start : None if end == -1 else end + 1])

    def ltrim(self, name, start, end):
        items = self.lists.get(name, [])
        self.lists[name] = items[start : None if end == -1 else end + 1]

    def llen(self, name):
        return len(self.lists.get(name, []))

    def lock(self, name, timeout, blocking):
        fake = self

        class Lock:
            def acquire(self):
                if fake.locked:
                    return False
                fake.locked = True
                return True

            def release(self):
                fake.locked = False

        return Lock()


@pytest.fixture
def buffer(monkeypatch):
    fake = FakeRedis()
    monkeypatch.setattr(request_log, "_log_buffer", lambda: fake)
    return fake


def test_without_redis_each_request_is_logged_as_it_happens(partner, monkeypatch):
    monkeypatch.setattr(request_log, "_log_buffer", lambda: None)
    key, client = partner
    client.get(SERVICES)
    log = ApiRequestLog.objects.get(api_key=key)
    assert (log.method, log.path, log.status) == ("GET", SERVICES, 200)


def test_with_redis_requests_wait_in_the_buffer_and_none_is_lost(partner, buffer):
    key, client = partner
    for _ in range(LOG_FLUSH_AT - 1):
        client.get(SERVICES)
    assert not ApiRequestLog.objects.filter(api_key=key).exists()
    assert buffer.llen(LOG_BUFFER) == LOG_FLUSH_AT - 1

    client.get(SERVICES)  # enough are waiting: a worker writes them (inline in tests)
    assert ApiRequestLog.objects.filter(api_key=key).count() == LOG_FLUSH_AT
    assert buffer.llen(LOG_BUFFER) == 0

    for _ in range(7):
        client.get(SERVICES)
    assert api_request_log_flush_task() == 7
    assert ApiRequestLog.objects.filter(api_key=key).count() == LOG_FLUSH_AT + 7


def test_a_buffered_row_keeps_the_time_of_its_request(partner, buffer):
    key, client = partner
    asked = timezone.now() - timedelta(minutes=5)
    with time_machine.travel(asked, tick=False):
        client.get(SERVICES)
    api_request_log_flush()
    log = ApiRequestLog.objects.get(api_key=key)
    assert log.created_at == asked
    assert (log.clinic_id, log.method, log.path) == (key.clinic_id, "GET", SERVICES)
    assert log.status == 200


def test_rows_stay_buffered_when_the_database_refuses_them(partner, buffer, monkeypatch):
    key, client = partner
    client.get(SERVICES)

    def refuse(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(request_log, "_log_insert", refuse)
    with pytest.raises(DatabaseError):
        api_request_log_flush()
    assert buffer.llen(LOG_BUFFER) == 1
    monkeypatch.undo()
    monkeypatch.setattr(request_log, "_log_buffer", lambda: buffer)
    assert api_request_log_flush() == 1
    assert ApiRequestLog.objects.filter(api_key=key).count() == 1


def test_requests_leave_the_writing_to_a_worker_asked_every_log_flush_at_rows(
    partner, buffer, monkeypatch
):
    key, client = partner
    monkeypatch.setattr(request_log, "LOG_FLUSH_AT", 3)
    asked = []
    monkeypatch.setattr(
        api_request_log_flush_task, "delay", lambda: asked.append(buffer.llen(LOG_BUFFER))
    )
    for _ in range(7):
        client.get(SERVICES)
    assert asked == [3, 6]  # once per 3 more rows waiting
    assert not ApiRequestLog.objects.filter(api_key=key).exists()  # no request wrote them


def test_with_no_worker_flushing_a_request_writes_a_batch_past_the_high_water_mark(
    partner, buffer, monkeypatch
):
    key, client = partner
    monkeypatch.setattr(request_log, "LOG_FLUSH_INLINE_AT", 4)
    monkeypatch.setattr(api_request_log_flush_task, "delay", lambda: None)  # a lost task
    for _ in range(3):
        client.get(SERVICES)
    assert not ApiRequestLog.objects.filter(api_key=key).exists()
    client.get(SERVICES)
    assert ApiRequestLog.objects.filter(api_key=key).count() == 4


@pytest.mark.parametrize("where", ["inline", "queued"])
def test_a_full_buffer_that_cannot_be_written_does_not_break_the_answer(
    where, partner, buffer, monkeypatch
):
    _key, client = partner
    monkeypatch.setattr(
        request_log, "_log_insert", lambda raw: (_ for _ in ()).throw(DatabaseError("x"))
    )
    # Inline: past the high-water mark; queued: the eager flush task raises in the request.
    monkeypatch.setattr(
        request_log, "LOG_FLUSH_INLINE_AT" if where == "inline" else "LOG_FLUSH_AT", 1
    )
    assert client.get(SERVICES).status_code == 200
    assert buffer.llen(LOG_BUFFER) == 1


def test_only_one_flush_runs_at_a_time(partner, buffer):
    _key, client = partner
    client.get(SERVICES)
    buffer.locked = True  # another process is flushing
    assert api_request_log_flush() == 0
    assert buffer.llen(LOG_BUFFER) == 1


def test_when_redis_is_down_the_row_is_written_directly(partner, buffer):
    key, client = partner
    buffer.fail_push = True
    client.get(SERVICES)
    assert ApiRequestLog.objects.filter(api_key=key).count() == 1


def test_a_row_of_a_key_deleted_meanwhile_is_kept_without_the_key(partner, buffer):
    key, client = partner
    client.get(SERVICES)
    key.delete()
    assert api_request_log_flush() == 1
    log = ApiRequestLog.objects.get(path=SERVICES)
    assert log.api_key_id is None
    assert log.clinic_id == key.clinic_id


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis)")
def test_the_buffer_works_on_a_real_redis(partner):
    key, client = partner
    real = request_log._log_buffer()
    real.delete(LOG_BUFFER)
    for _ in range(3):
        client.get(SERVICES)
    assert real.llen(LOG_BUFFER) == 3
    assert api_request_log_flush() == 3
    assert ApiRequestLog.objects.filter(api_key=key).count() == 3


# --- Throttling -----------------------------------------------------------------------------
@pytest.fixture
def three_a_minute(monkeypatch):
    monkeypatch.setattr(ApiKeyThrottle, "THROTTLE_RATES", {"api_key": "3/min"})


def test_the_throttle_refuses_past_the_rate_and_says_when_to_come_back(partner, three_a_minute):
    _key, client = partner
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        remaining = [client.get(SERVICES)["RateLimit-Remaining"] for _ in range(3)]
        refused = client.get(SERVICES)
    assert remaining == ["2", "1", "0"]
    assert refused.status_code == 429
    # The window ends in 50 s; the next one still counts the 3 at full weight for a while.
    assert 50 < int(refused["Retry-After"]) <= 70


def test_the_previous_window_counts_less_as_it_slides_out(partner, three_a_minute):
    _key, client = partner
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start + timedelta(seconds=50), tick=False) as clock:
        for _ in range(3):
            assert client.get(SERVICES).status_code == 200
        clock.shift(timedelta(seconds=15))  # 5 s into the next window: 3 × 55/60 still count
        assert client.get(SERVICES).status_code == 429
        clock.shift(timedelta(seconds=30))  # 35 s in: 3 × 25/60 = 1.25 count
        assert client.get(SERVICES).status_code == 200
        assert client.get(SERVICES).status_code == 429


def test_a_refused_request_is_not_counted(partner, three_a_minute):
    _key, client = partner
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(3):
            client.get(SERVICES)
        for _ in range(5):
            assert client.get(SERVICES).status_code == 429
        clock.shift(timedelta(minutes=2))  # both counted windows are gone
        assert client.get(SERVICES).status_code == 200


# --- The lean appointment serializer --------------------------------------------------------
def _appointments(agenda):
    room = RoomFactory(clinic=agenda.clinic)
    plain = AppointmentFactory(service=agenda.service, professional=agenda.professional)
    in_room = AppointmentFactory(
        service=agenda.service,
        professional=agenda.professional,
        start=plain.start + timedelta(hours=1),
        room=room,
        status=AppointmentStatus.CONFIRMED,
        confirmed_at=timezone.now(),
        notes="Trazer exames",
    )
    cancelled = AppointmentFactory(
        service=agenda.service,
        professional=agenda.professional,
        start=plain.start + timedelta(hours=2),
        status=AppointmentStatus.CANCELLED,
        cancelled_at=timezone.now(),
        cancellation_reason="Imprevisto",
        late_cancellation=True,
    )
    moved = AppointmentFactory(
        service=agenda.service,
        professional=agenda.professional,
        start=plain.start + timedelta(hours=3),
        status=AppointmentStatus.RESCHEDULED,
    )
    AppointmentFactory(
        service=agenda.service,
        professional=agenda.professional,
        start=plain.start + timedelta(hours=4),
        replaces=moved,
    )
    return [plain, in_room, cancelled, moved]


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "UTC", "America/Manaus"])
def test_the_lean_serializer_writes_what_the_declared_fields_would(agenda, zone):
    agenda.clinic.time_zone = zone
    agenda.clinic.save()
    _appointments(agenda)
    context = {"clinic": agenda.clinic}
    rows = Appointment.objects.for_clinic(agenda.clinic).annotate(
        replaced_by_pk=serializers.models.F("replaced_by__id")
    )
    assert rows.count() == 5
    for appointment in rows:
        serializer = AppointmentSerializer(appointment, context=context)
        declared = serializers.ModelSerializer.to_representation(serializer, appointment)
        assert serializer.data == declared
        row = rows.values(*LIST_COLUMNS).get(pk=appointment.pk)
        assert AppointmentSerializer(context=context).to_representation(row) == declared


def test_the_appointment_list_answers_as_before(agenda, clinic_a):
    _appointments(agenda)
    _key, secret = api_key_create(clinic=clinic_a, name="Lab", scopes=["appointments:read"])
    results = client_with(secret).get("/api/v1/appointments/").json()["results"]
    moved = next(r for r in results if r["status"] == "rescheduled")
    assert moved["replaced_by"] is not None
    assert {r["price"] for r in results} == {"150.00"}
    assert all(r["start"].endswith("-03:00") for r in results)


# --- Redis down -----------------------------------------------------------------------------
class DownRedis:
    """A Redis client whose every command fails, as when the server is down."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise redis.ConnectionError("Connection refused")

        if name == "pipeline":
            return lambda **kwargs: DownPipeline()
        return fail


class DownPipeline:
    def __getattr__(self, name):
        if name == "execute":

            def fail():
                raise redis.ConnectionError("Connection refused")

            return fail
        return lambda *args, **kwargs: self


def test_when_redis_is_down_the_api_still_answers_and_logs(partner, monkeypatch):
    key, client = partner
    monkeypatch.setattr(shared_redis, "state_client", lambda: DownRedis())
    assert client.get(SERVICES).status_code == 200
    assert client.get(SERVICES).status_code == 200
    assert ApiRequestLog.objects.filter(api_key=key).count() == 2
    api_key_revoke(key=key)
    assert client.get(SERVICES).status_code == 401  # read from the database


def test_the_request_log_is_kept_ninety_days_then_purged_in_batches(partner, monkeypatch):
    key, _client = partner
    now = timezone.now()
    for days in (91, 95, 120, 89, 1):
        ApiRequestLog.objects.create(
            clinic_id=key.clinic_id, api_key=key, method="GET", path="/x", status=200,
            latency_ms=1, created_at=now - timedelta(days=days),
        )  # fmt: skip
    monkeypatch.setattr(request_log, "LOG_PURGE_BATCH", 2)  # three batches
    assert api_request_log_purge_task() == 3
    kept = sorted((now - log.created_at).days for log in ApiRequestLog.objects.all())
    assert kept == [1, 89]
    assert api_request_log_purge_task() == 0
