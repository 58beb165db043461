"""Backups and disaster recovery (issue 27): PostgreSQL through pgBackRest (continuous WAL
archiving to an encrypted S3-compatible repository, full and differential backups,
point-in-time restore), the embedded default's SQLite copies with a checksum, and the restore
drill that proves a backup can be restored and is whole.

Modules:

- ``config``     the settings, and pgBackRest's configuration rendered from them
- ``runner``     the one way a backup tool is run (timeouts, the PostgreSQL user, logging)
- ``pgbackrest`` pgBackRest's commands: check, backup, info, verify, restore, expire
- ``sqlite``     SQLite online backup and restore, each copy with its SHA-256
- ``cluster``    a throwaway PostgreSQL cluster (initdb / pg_ctl) on a free port
- ``checks``     what a drill checks on a restored database, and ``@drill_check`` for more
- ``drill``      restore into a scratch database, run the checks, measure RTO and RPO
- ``services``   every write: runs recorded (``BackupRun``), events published, alerts
- ``tasks``      the periodic jobs (daily backup, weekly drill, hourly watch)

Nothing here is imported by ``integrations.models`` but ``choices``.
"""
