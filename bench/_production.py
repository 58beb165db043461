"""The settings every benchmark runs with: production's (DEBUG off — with it on, Django keeps
and formats every query for its debug log, which is not what production pays)."""

#: Environment of a benchmark process, before Django starts. The key encrypts only the
#: benchmark's own data; it is fixed so that what one run stored the next can read.
PRODUCTION = {
    "DEBUG": "False",
    "SECRET_KEY": "bench-" + "x" * 50,
    "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
    "CUIDAR_FERNET_KEYS": "1RkVQc1mfWzSl7uKZvyUHAQcT3kTuqR7PZM6evz1imA=",
    "SECURE_SSL_REDIRECT": "False",
}


def bench_environment(database_url: str, broker_url: str) -> dict[str, str]:
    """The environment of a benchmark that runs Django (and Celery) on ``database_url``,
    with Redis as production has it (``BENCH_REDIS_URL``)."""
    import os

    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        **PRODUCTION,
    }


def database_create(database_url: str) -> None:
    """Create the PostgreSQL database of ``database_url`` if it does not exist yet."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
