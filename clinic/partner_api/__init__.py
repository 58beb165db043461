"""The partner API framework: what every ``api.py`` builds on (DESIGN.md "Who uses it").

A sub-app below integrations that imports only ``clinic.kernel`` (``lint-imports`` checks
it), so integrations' own endpoints can stand on it. One module per subject:

- **Keys** (:mod:`.keys`): ``Authorization: Bearer cdr_<prefix>_<secret>`` (or
  ``X-Api-Key``). A key belongs to one clinic and carries scopes; only its hash is stored.
  Staff signed in to the admin may browse the API for the clinic they work in (read only).
  :func:`~.keys.api_clinic` is the clinic of the request; querysets go through it. A
  verified key (with its clinic) is cached for a few seconds by the hash of the secret;
  revoking, saving or deleting a key, or saving its clinic, drops it at once.
- **Scopes** (:mod:`.scopes`): a view declares ``required_scopes = {"GET":
  "patients:read", "POST": "patients:write"}``; a key without the scope gets 403.
- **Throttling** (:mod:`.throttling`): per key (cache-backed; Redis in production), a
  sliding window over two counters (constant cost per request), with ``RateLimit-*`` and
  ``Retry-After`` headers.
- **Idempotency** (:mod:`.idempotency`): a POST with ``Idempotency-Key``: same key and
  body → the stored response, replayed; same key, other body → 422; the first still
  running → 409. Kept 24 h. A claim whose request cannot still be running (its worker
  killed: gunicorn's timeout, OOM, ``kill -9``) expires after ``idempotency_claim_ttl``; a
  retry then runs. The work and its stored answer commit in one transaction, so a retry
  never does twice what was done (except ``idempotency_outside_transaction`` actions).
- **Errors** (:mod:`.problems`): ``application/problem+json`` (RFC 9457) with a field map,
  for DRF errors and every ``ApplicationError``.
- **Log** (:mod:`.request_log`): one ``ApiRequestLog`` per request (key, method, path,
  status, latency; no bodies). With Redis the rows are buffered there and a worker writes
  them in bulk (``api_request_log_flush``).
- **Views** (:mod:`.views`): ``PartnerAPIMixin`` puts it all together; cursor pagination.
- **Fields** (:mod:`.fields`): datetimes in the clinic's time zone.

No imports here: an app package is imported before the models are ready.
"""
