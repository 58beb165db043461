"""Admin of the integrations app, one module per area."""

from . import backups, outbox, providers, usage, webhooks  # noqa: F401  (registers the ModelAdmins)
