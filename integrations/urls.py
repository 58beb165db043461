"""Inbound webhook routes (filled by the webhooks work)."""

urlpatterns: list = []
