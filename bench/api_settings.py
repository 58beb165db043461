"""Settings of the API benchmark's gunicorn: Cuidar's own, plus a bare JSON view (the
framework floor) in the URLs."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
