"""The console's languages: Babel message catalogues (``locale/<lang>/LC_MESSAGES/console.po``), Chinese first.

The ``.po`` files are the source and are compiled in memory with Babel's own reader and writer when the
console starts, so there is no build step and no compiled file to keep in step. Message ids are English;
``zh_CN`` translates them, ``en`` is the identity catalogue (present so both languages load the same way).
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES: dict[str, str] = {"zh_CN": "中文", "en": "English"}
"""Offered languages, the default first, each named in itself (what the switch shows)."""
DEFAULT_LANGUAGE = "zh_CN"
DOMAIN = "console"
LOCALE_DIR = Path(__file__).parent / "locale"

LOCAL_TIME = timezone(timedelta(hours=8), "UTC+8")
"""The zone's local time: every time a person reads is shown in it, labelled."""


def language(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT_LANGUAGE


@cache
def translations(lang: str) -> Translations:
    """The catalogue of ``lang``, read from its ``.po`` and compiled in memory (once per process)."""
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as source:
        catalog = read_po(source, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def local_time(moment: datetime | None) -> str:
    """``2026-03-02 10:00 UTC+8``; an empty string for no time."""
    if moment is None:
        return ""
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M UTC+8")
