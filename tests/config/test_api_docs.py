"""The API docs (Swagger UI) are served from the project: they work offline."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"


@pytest.fixture
def static_client(client, settings):
    """Static files served as production serves them (whitenoise), here from the apps."""
    settings.MIDDLEWARE = [settings.MIDDLEWARE[0], WHITENOISE, *settings.MIDDLEWARE[1:]]
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    return client


@pytest.mark.parametrize("name", ["swagger-ui", "api-docs"])
def test_the_swagger_ui_loads_nothing_from_another_host_and_its_files_are_served(
    name, static_client
):
    page = static_client.get(reverse(name))
    assert page.status_code == 200
    html = page.content.decode()

    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html

    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    static = [url for url in assets if url.startswith("/static/")]
    assert any(url.endswith("swagger-ui-bundle.js") for url in static), assets
    assert any(url.endswith("swagger-ui.css") for url in static), assets
    for url in static:
        response = static_client.get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content if response.streaming else [response.content])
