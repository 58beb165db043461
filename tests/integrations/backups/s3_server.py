"""A local S3-compatible server for the backup tests: moto's S3 in server mode, served by
gunicorn (threads, keep-alive) over TLS. pgBackRest talks to S3 over HTTPS only, and drops
the connection of werkzeug's development server (moto_server) after each upload."""

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
