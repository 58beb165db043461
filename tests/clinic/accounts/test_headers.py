"""Security headers of staff and patient pages (issue 19)."""

import re

import pytest
from django.test import Client

from config.security_headers import CSP


@pytest.mark.parametrize("url", ["/admin/login/", "/portal/entrar/", "/api/v1/"])
def test_every_page_family_sends_the_security_headers(db, url):
    response = Client().get(url)
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"]
    assert "publickey-credentials-get=(self)" in response["Permissions-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_portal_policy_allows_no_inline_script(db):
    assert Client().get("/portal/entrar/")["Content-Security-Policy"] == CSP


def test_inline_scripts_of_staff_pages_carry_the_responses_nonce(admin_a, client_for):
    response = client_for(admin_a).get("/admin/messaging/messagetemplate/add/")
    nonce = response["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    html = response.content.decode()
    tags = re.findall(r"<script([^>]*)>", html)
    inline = [t for t in tags if "src=" not in t and "application/json" not in t]
    assert inline and all(f'nonce="{nonce}"' in t for t in inline)
    assert "onchange=" not in html and "onclick=" not in html


def test_a_bare_password_never_opens_the_api(receptionist_a):
    import base64

    basic = base64.b64encode(b"recepcao_a:s3nha-forte-123").decode()
    response = Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.wsgi_request.user.is_anonymous
