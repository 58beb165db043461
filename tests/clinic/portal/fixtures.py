"""Portal fixtures, for every app's portal tests (a plugin: ``tests/conftest.py`` names it in
``pytest_plugins``): ``portal_client_for(patient)`` is a test client signed in to the portal
as that patient (a real ``PortalSession`` and its cookie, as the sign-in steps leave them)."""

import pytest
from django.test import Client
from django.utils import translation

from clinic.portal import sessions


@pytest.fixture
def portal_client_for(db):
    def make(patient) -> Client:
        client = Client()
        token, _session = sessions.session_start(patient=patient)
        client.cookies[sessions.COOKIE_NAME] = token
        client.cookies[sessions.COOKIE_NAME]["path"] = sessions.COOKIE_PATH
        return client

    return make


@pytest.fixture
def portal_a(patient_a, portal_client_for):
    """Patient A of clinic A, signed in."""
    return portal_client_for(patient_a)


@pytest.fixture
def portal(patient_a, portal_client_for):
    """Patient A signed in, asking for English pages."""
    client = portal_client_for(patient_a)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def english(settings):
    """English pages: the request's language (no cookie or header → LANGUAGE_CODE) and the
    test's own (templates rendered in the test)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
