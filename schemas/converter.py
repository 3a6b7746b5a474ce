"""The Temporal data converter of every client, worker and replayer of the engine.

Pydantic's (``temporalio.contrib.pydantic``), decoding payloads within :func:`schemas.text.checked_content`:
a payload holds content a :class:`~schemas.text.CleanModel` checked when it was built (at the API, or in
workflow code from such models), so decoding it does not walk it again. A worker decodes every payload of a
case again at every cache miss, and the walk was most of the decoding's cost (issue 15).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter

from schemas.text import checked_content

__all__ = ["CheckedPayloadConverter", "data_converter"]


class CheckedPayloadConverter(PydanticPayloadConverter):
    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[type] | None = None) -> list[Any]:
        with checked_content():
            return super().from_payloads(payloads, type_hints)


data_converter = DataConverter(payload_converter_class=CheckedPayloadConverter)
