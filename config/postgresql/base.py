"""Django's PostgreSQL backend, reading ``timestamptz`` with psycopg's C loader.

Django 5.2 registers its own ``timestamptz`` loader on every connection: a subclass of
psycopg's pure-Python loader that stamps the configured time zone on each value. psycopg
cannot substitute its C implementation for a subclass (Django ticket #36960, psycopg issue
#1273), so every datetime read from PostgreSQL is parsed in Python: about 2.5 µs each, a
tenth of the CPU of a page of 50 appointments in the partner API.

This backend keeps Django's loader and its semantics (``tzinfo`` replaced by the
connection's time zone, UTC under ``USE_TZ``) and only delegates the parsing to the C loader
psycopg itself would use (taken from psycopg's global adapters: public API only). Without
the C implementation (pure-Python psycopg), it is Django's loader unchanged.

``config.settings`` selects it for every ``postgres://`` DATABASE_URL.
"""

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


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        params["context"] = adapters_template(settings.USE_TZ, self.timezone)
        return params
