"""Browser tests: Playwright drives Debian's Chromium (``/usr/bin/chromium``, installed by
``.ci/run`` with apt; Playwright's own browser download is never used) against
pytest-django's live server, and axe-core checks each page.

Without Chromium the tests are skipped locally with a reason naming it; ``.ci/run`` fails
on that skip, so CI always runs them.
"""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CUIDAR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: The flags this machine needs (root, no GPU, no network beyond localhost).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: axe-core impacts that fail a page.
BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture(scope="session")
def _playwright():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread until the session ends; the
    # ORM calls of the tests (and of the database fixtures' teardown) are still plain
    # synchronous calls. Subprocesses must not inherit this (tests/config strips it).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser, live_server):
    """A phone-sized page in a fresh context (no cookies), in Brazilian Portuguese."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 390, "height": 844},
        locale="pt-BR",
        timezone_id="America/Sao_Paulo",
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def axe_check():
    """``axe_check(page)`` fails on any serious or critical axe-core violation."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def check(page, label: str = ""):
        results = axe.run(page)
        violations = [
            v for v in results.response["violations"] if v.get("impact") in BLOCKING_IMPACTS
        ]
        details = "\n".join(
            f"- {v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:3])
            for v in violations
        )
        assert not violations, f"accessibility violations on {label or page.url}:\n{details}"
        return results

    return check
