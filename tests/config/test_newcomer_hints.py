"""What `make run`, seed_demo and the docs tell a newcomer names pages as the admin does."""

from pathlib import Path

import pytest
from django.apps import apps
from django.utils import translation
from django.utils.text import capfirst

from integrations.models import ConsoleRecord

ROOT = Path(__file__).resolve().parents[2]
TOLD_IN = [
    "Makefile",
    "clinic/management/commands/seed_demo.py",
    "docs/portal.md",
    "docs/messaging.md",
    "docs/integrations.md",
]


@pytest.mark.parametrize("path", TOLD_IN)
def test_the_console_records_page_is_named_as_the_admin_shows_it(path):
    with translation.override("pt-br"):  # the admin's default language
        shown = (
            f"{capfirst(apps.get_app_config('integrations').verbose_name)} › "
            f"{capfirst(ConsoleRecord._meta.verbose_name_plural)}"
        )
    text = (ROOT / path).read_text(encoding="utf-8")

    assert shown in text
    assert "Console records" not in text
