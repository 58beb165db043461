"""Admin: webhooks."""
