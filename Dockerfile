# Cuidar production image: gunicorn serving Django, static files by whitenoise.
# The same image runs the web, the Celery worker and beat (see compose.yaml). Two more
# targets serve the backups (issue 27, docs/backups.md): `postgres`, PostgreSQL with
# pgBackRest for WAL archiving, and `backup`, the worker that takes backups and runs the
# restore drills beside it. The last stage, `app`, is what a plain `docker build .` makes.

# PostgreSQL's major version: the database image's, and the drill's initdb/pg_ctl (a
# restored cluster starts only under its own major version).
ARG PG_MAJOR=16

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /venv
COPY pyproject.toml README.md ./
COPY config ./config
COPY clinic ./clinic
COPY scheduling ./scheduling
COPY billing ./billing
COPY crm ./crm
COPY loyalty ./loyalty
COPY integrations ./integrations
COPY templates ./templates
COPY manage.py ./
# Editable install: the code stays in /app (settings find templates/ and locale/ there).
RUN /venv/bin/pip install -e .
# Compiled catalogues and collected static files are built into the image.
RUN for dir in */locale; do /venv/bin/pybabel -q compile --domain django --directory "$dir"; done \
 && DEBUG=False SECRET_KEY=build-only ALLOWED_HOSTS=build STATIC_ROOT=/app/static \
    CUIDAR_FERNET_KEYS=YnVpbGQtb25seS1rZXktbmV2ZXItZm9yLXJlYWwtZGE= \
    /venv/bin/python manage.py collectstatic --noinput --verbosity 0

FROM python:3.11-slim AS runtime
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBUG=False \
    STATIC_ROOT=/app/static \
    CUIDAR_VAR_DIR=/app/var
# Pango, HarfBuzz and fonts for WeasyPrint (clinical documents rendered to PDF).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 1000 cuidar \
 && useradd --system --uid 1000 --gid cuidar --home-dir /app --shell /usr/sbin/nologin cuidar
COPY --from=build /venv /venv
COPY --from=build --chown=cuidar:cuidar /app /app
WORKDIR /app
RUN mkdir -p /app/var && chown cuidar:cuidar /app/var

# --- PostgreSQL with pgBackRest: archive_command runs `pgbackrest archive-push` in here ---
# The official image already has PostgreSQL's apt repository (PGDG): pgBackRest from there
# is the same version as the backup worker's (archive and backups must agree).
FROM postgres:${PG_MAJOR} AS postgres
RUN apt-get update \
 && apt-get install -y --no-install-recommends pgbackrest \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 700 \
    /etc/cuidar-backup /var/log/pgbackrest /var/spool/pgbackrest

# --- The backup worker: Cuidar + pgBackRest + PostgreSQL's server programs ----------------
# It runs as the database's owner (uid 999 in the official image) beside the database, on
# its data volume: pgBackRest reads the cluster's files. Celery queue `backups` only.
FROM runtime AS backup
ARG PG_MAJOR
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql \
    --shell /bin/bash postgres \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-common \
 && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
 && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" pgbackrest \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 700 \
    /etc/cuidar-backup /var/lib/cuidar-backup /var/log/pgbackrest /var/spool/pgbackrest
ENV CUIDAR_BACKUP_PG_BINDIR=/usr/lib/postgresql/${PG_MAJOR}/bin \
    CUIDAR_BACKUP_DIR=/var/lib/cuidar-backup \
    CUIDAR_BACKUP_PGBACKREST_CONFIG=/etc/cuidar-backup/pgbackrest.conf
USER postgres
CMD ["celery", "-A", "config", "worker", "--loglevel=INFO", "--queues=backups", "--concurrency=1"]

# --- The application (web, workers, beat): the default target -----------------------------
FROM runtime AS app
USER cuidar
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/', timeout=4).status != 200)"
# Bind, workers (WEB_CONCURRENCY, 3) and the worker timeout (CUIDAR_WEB_WORKER_TIMEOUT, 30 s,
# which Django reads too) are in config/gunicorn.py.
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application"]
