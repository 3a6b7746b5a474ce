"""WeasyPrint for the official documents and the reports: one font configuration per process, reused.

With WeasyPrint's default, a ``FontConfiguration`` per document, fontconfig's memory for the CJK fonts (about
20 MiB a document) is released only when Python's cycle collector reaches it, which in a long-running worker is
rarely: a worker issuing documents grew from 222 MiB to 1 GiB over 40 documents, and to 1.7 GB during the
throughput benchmark. One configuration, reused, keeps the process flat (the CPU per document stays about
140 ms), and the bytes are those a fresh configuration writes (``tests/test_documents.py``). WeasyPrint's
objects are not made for threads, so renders take turns.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration

_TURN = threading.Lock()


@functools.cache
def _fonts() -> FontConfiguration:
    return FontConfiguration()


def write_pdf(html: str, **options: Any) -> bytes:
    """The PDF of ``html``; ``options`` as WeasyPrint's ``write_pdf`` takes them."""
    with _TURN:
        return HTML(string=html).write_pdf(font_config=_fonts(), **options)
