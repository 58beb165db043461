"""Django's PostgreSQL backend, reading ``timestamptz`` with psycopg's C loader, and
health-checking only connections that sat idle.

Django 5.2 registers its own ``timestamptz`` loader on every connection: a subclass of
psycopg's pure-Python loader that stamps the configured time zone on each value. psycopg
cannot substitute its C implementation for a subclass (Django ticket #36960, psycopg issue
#1273), so every datetime read from PostgreSQL is parsed in Python: about 2.5 µs each, a
tenth of the CPU of a page of 50 appointments in the partner API.

This backend keeps Django's loader and its semantics (``tzinfo`` replaced by the
connection's time zone, UTC under ``USE_TZ``) and only delegates the parsing to the C loader
psycopg itself would use (taken from psycopg's global adapters: public API only). Without
the C implementation (pure-Python psycopg), it is Django's loader unchanged.

Health checks (``CONN_HEALTH_CHECKS``): Django pings a persistent connection with
``SELECT 1`` before the first query of every request or task, a whole round trip to
PostgreSQL each time (a tenth of the time of an API list request under load). A connection
that opened a cursor less than ``HEALTH_CHECK_IDLE_SECONDS`` ago is taken as alive without
the ping (HikariCP's "alive bypass window"): under load no request pays for it, and a
connection that sat idle, the one a database restart may have broken, is still checked.
A connection that broke within that second fails the request that finds it, and Django
closes it at that request's end, as it does without health checks.

``config.settings`` selects it for every ``postgres://`` DATABASE_URL.
"""

import time
from functools import lru_cache

from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import BaseTzLoader, get_adapters_template
from psycopg import adapt, adapters
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader

TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid
#: What psycopg loads ``timestamptz`` text with: its C class when psycopg-c or
#: psycopg-binary is installed, else the pure-Python one.
OPTIMISED_LOADER = adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class FastTzLoader(BaseTzLoader):
    """Django's ``BaseTzLoader``, parsing with psycopg's C loader."""

    def __init__(self, oid, context=None):
        super().__init__(oid, context)
        self._parse = OPTIMISED_LOADER(oid, context).load

    def load(self, data):
        return self._parse(data).replace(tzinfo=self.timezone)


def optimised() -> bool:
    """Whether psycopg has a C loader to delegate to."""
    return OPTIMISED_LOADER is not TimestamptzLoader


@lru_cache
def adapters_template(use_tz, timezone) -> adapt.AdaptersMap:
    """Django's adapters for these settings, with the fast loader (a copy: Django's own
    template is shared and cached)."""
    template = get_adapters_template(use_tz, timezone)
    if not optimised():
        return template
    context = adapt.AdaptersMap(template)
    loader = type("SpecificFastTzLoader", (FastTzLoader,), {"timezone": timezone})
    context.register_loader("timestamptz", loader)
    return context


#: A connection used this recently is not pinged before a request's first query.
HEALTH_CHECK_IDLE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    #: When this connection last opened a cursor (``time.monotonic()``).
    used_at = float("-inf")

    def get_connection_params(self):
        params = super().get_connection_params()
        params["context"] = adapters_template(settings.USE_TZ, self.timezone)
        return params

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self.used_at < HEALTH_CHECK_IDLE_SECONDS
        ):
            self.health_check_done = True  # it answered a moment ago
            return
        super().close_if_health_check_failed()

    def _cursor(self, name=None):
        cursor = super()._cursor(name)
        self.used_at = time.monotonic()
        return cursor
