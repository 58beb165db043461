"""WhatsApp provider adapters: Evolution API v2 (self-hosted), Meta's WhatsApp Cloud API and
Z-API. Each module registers one ``MessagingProvider`` of kind ``whatsapp``; recorded payloads
of each live in ``tests/contract/<provider>/``."""
