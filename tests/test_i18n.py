"""pt-BR is the default and its catalogue is complete."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
# Apps, and sub-apps with a catalogue of their own (clinic/accounts).
CATALOGUES = sorted(
    [
        *ROOT.glob("*/locale/pt_BR/LC_MESSAGES/django.po"),
        *ROOT.glob("*/*/locale/pt_BR/LC_MESSAGES/django.po"),
    ]
)


def test_every_app_has_a_pt_br_catalogue():
    apps = {p.parts[-5] for p in CATALOGUES}
    assert apps >= {"config", "clinic"}


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-5])
def test_the_pt_br_catalogue_is_complete(path):
    catalog = read_po(path.open("rb"))
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (installed in CI)")
def test_every_translatable_string_in_the_code_is_in_the_catalogue(tmp_path):
    """makemessages into a scratch copy finds no string that the catalogue lacks."""
    scratch = tmp_path / "src"
    shutil.copytree(
        ROOT,
        scratch,
        ignore=shutil.ignore_patterns(".venv", "var", ".git", "__pycache__", "*.mo", "tests"),
    )
    subprocess.run(
        [
            sys.executable, "manage.py", "makemessages", "--locale", "pt_BR", "--no-obsolete",
            "--ignore", "bench/*", "--ignore", "*/migrations/*",
        ],
        cwd=scratch,
        check=True,
        capture_output=True,
    )  # fmt: skip
    missing = {}
    for path in [
        *scratch.glob("*/locale/pt_BR/LC_MESSAGES/django.po"),
        *scratch.glob("*/*/locale/pt_BR/LC_MESSAGES/django.po"),
    ]:
        new = [m.id for m in read_po(path.open("rb")) if m.id and not m.string]
        if new:
            missing[path.parts[-5]] = new
    assert missing == {}, "run `make makemessages` and translate the new strings"
