"""What every partner-API test needs: a client holding a fresh key of a clinic."""

from rest_framework.test import APIClient

from clinic.partner_api.keys import api_key_create


def key_client(clinic, *scopes, name: str = "Parceiro") -> APIClient:
    """An API client authenticated with a new key of ``clinic`` holding ``scopes``.
    (The cache, with its throttle histories, is emptied before every test.)"""
    _key, secret = api_key_create(clinic=clinic, name=name, scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client
