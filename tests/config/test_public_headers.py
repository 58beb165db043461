"""Every public page — the portal, the pages of the links in messages, waitlist offers,
calendar feeds, error pages — carries the portal's Content-Security-Policy, set in one
place (``config.security_headers``). The admin and the API, with their own scripts, do not."""

import pytest
from django.test import Client

from config.security_headers import CSP

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/portal/entrar/",  # portal, signed out
        "/portal/consultas/",  # portal page redirecting to the sign-in
        "/agenda/l/confirm/not-a-token/",  # a link from a reminder
        "/agenda/offer/not-a-token/",  # a waitlist offer
        "/agenda/feed/not-a-token.ics",  # a calendar feed
        "/pagina-que-nao-existe/",  # the 404 page
    ],
)
def test_every_public_page_family_carries_the_policy(client, url):
    assert client.get(url)["Content-Security-Policy"] == CSP


def test_a_signed_in_portal_page_carries_the_policy(portal_a):
    response = portal_a.get("/portal/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CSP


def test_the_policy_allows_only_this_origin():
    assert "default-src 'self'" in CSP and "script-src 'self'" in CSP
    assert "style-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert "unsafe-inline" not in CSP and "http" not in CSP


def test_the_admin_has_its_own_policy_with_a_nonce_per_response():
    first = Client().get("/admin/login/")["Content-Security-Policy"]
    second = Client().get("/admin/login/")["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in first and "frame-ancestors 'none'" in first
    assert "unsafe-inline" not in first.split("script-src")[1].split(";")[0]
    assert first != second  # a new nonce each time


def test_the_api_keeps_its_own_scripts_but_cannot_be_framed():
    assert Client().get("/api/v1/")["Content-Security-Policy"] == "frame-ancestors 'none'"
