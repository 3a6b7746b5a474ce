"""The console's message catalogues: every message of its templates and code is in both, and translated
into Chinese (a message missing there would show in English on a Chinese page)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from api.console.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What ``pybabel extract`` finds, as api/console/babel.cfg says to run it."""
    template = tmp_path_factory.mktemp("catalogues") / "console.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    command = [str(pybabel), "extract", "-F", "api/console/babel.cfg", "-k", "_", "-k", "gettext:2", "-k", "N_"]
    subprocess.run([*command, "-o", str(template), "."], cwd=ROOT, check=True, capture_output=True)
    with template.open("rb") as source:
        return {message.id for message in read_po(source) if message.id}


def catalogue(lang: str) -> dict[str, str]:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as source:
        return {message.id: message.string for message in read_po(source, locale=lang) if message.id}


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_message_is_in_the_catalogue(extracted: set[str], lang: str) -> None:
    messages = catalogue(lang)
    assert extracted - messages.keys() == set(), f"missing from {lang}: update its console.po"
    assert messages.keys() - extracted == set(), f"{lang} holds messages nothing uses any more"


def test_every_message_has_its_chinese(extracted: set[str]) -> None:
    chinese = catalogue("zh_CN")
    assert [message for message in sorted(extracted) if not chinese.get(message)] == []
    assert any("待办" in text for text in chinese.values())


def test_a_message_is_formatted_the_same_in_both_languages() -> None:
    chinese = catalogue("zh_CN")
    for message, text in chinese.items():
        assert sorted(_placeholders(message)) == sorted(_placeholders(text)), message


def _placeholders(text: str) -> list[str]:
    return re.findall(r"%\((\w+)\)s", text)
