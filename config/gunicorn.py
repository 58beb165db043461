"""gunicorn's configuration (``gunicorn -c config/gunicorn.py config.wsgi:application``).

``timeout`` is ``CUIDAR_WEB_WORKER_TIMEOUT``, the variable Django's settings read too: a
sync worker whose request runs longer is killed, so no request outlives it, and an
Idempotency-Key claimed by a request whose worker died is free again shortly after
(clinic.partner_api.idempotency.idempotency_claim_ttl). Both must read the same value.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "sync"  # the timeout bounds a request only for sync workers
timeout = int(os.environ.get("CUIDAR_WEB_WORKER_TIMEOUT", "30"))
graceful_timeout = timeout
accesslog = "-"
forwarded_allow_ips = "*"
