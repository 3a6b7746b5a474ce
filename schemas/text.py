"""Refusing, at the edge, content PostgreSQL cannot store as it was hashed.

Every request and input model derives from :class:`CleanModel`. Before any field is validated, it walks
the raw input (dicts, lists, strings, numbers; models already built were checked when they were built)
and refuses, naming the field path of each:

- a string (or a dict key) containing NUL (``\\u0000``): PostgreSQL's ``text`` and ``jsonb`` refuse it,
  so ``record_events`` would fail forever and block the case;
- a string containing a lone surrogate (``\\ud800``-``\\udfff``): not encodable as UTF-8;
- a float that is not finite, is negative zero or whose ``repr`` uses exponent notation: ``jsonb`` stores
  ``1e20`` as ``100000000000000000000`` and ``-0.0`` as ``0``, so the event read back would no longer
  match its hash. Plain decimals (``24.5``) are fine;
- lists and objects nested more than :data:`MAX_DEPTH` levels deep: Temporal's JSON payload converter
  refuses to write (or, a little less deep, to read back) a payload nested about 200 levels deep, and the
  workflow's input and recorded events wrap the request in a few more levels, so such a case would be
  accepted and then never run.

Content is never cleaned inside a workflow: what was hashed must be what is stored.

The walk runs once, at the edge: for the outermost model validated (the models nested in it were part of
its walk), and not when a Temporal payload is decoded (:func:`checked_content`, which the engine's data
converter, ``schemas.converter``, enters): a payload holds what a model checked when it was built, at the
API or by workflow code from such models, and a worker decodes every payload of a case again at every
cache miss.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Self

from pydantic import BaseModel, ModelWrapValidatorHandler, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = ["MAX_DEPTH", "MAX_REPORTED", "CleanModel", "checked_content", "unstorable"]

MAX_REPORTED = 20
"""At most this many offending values are reported per model."""

MAX_DEPTH = 64
"""Deepest nesting of lists and objects below a request's root (the root's own fields are level 1)."""

_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")

FieldPath = tuple[str | int, ...]


def _string_problem(text: str) -> str | None:
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"contains a NUL character (\\u0000) at position {found.start()}, which PostgreSQL cannot store"
    return (
        f"contains a lone surrogate (\\u{ord(found.group()):04x}) at position {found.start()}, "
        "which is not valid Unicode text"
    )


def _float_problem(number: float) -> str | None:
    if not math.isfinite(number):
        return f"{number!r} is not a finite number"
    if number == 0.0 and math.copysign(1.0, number) < 0:
        return "-0.0 is stored by PostgreSQL as 0 and would no longer match its hash; send 0"
    shown = repr(number)
    if "e" in shown or "E" in shown:
        return (
            f"{shown} is written with an exponent; PostgreSQL's jsonb would store it as a plain decimal and "
            "the recorded hash would no longer match: send an integer, a plain decimal or a string"
        )
    return None


def unstorable(value: Any, path: FieldPath = ()) -> list[tuple[FieldPath, str]]:
    """Every (field path, reason) in ``value`` that cannot be stored and read back unchanged; at most
    :data:`MAX_REPORTED`. Walks dicts, lists and tuples iteratively (no recursion limit to hit)."""
    found: list[tuple[FieldPath, str]] = []
    stack: list[tuple[FieldPath, Any, int]] = [(path, value, 0)]
    while stack and len(found) < MAX_REPORTED:
        where, item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)) and depth > MAX_DEPTH:
            found.append(
                (where, f"is nested more than {MAX_DEPTH} levels deep; Temporal's JSON payloads cannot carry it")
            )
            continue
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                found.append((where, problem))
        elif isinstance(item, float):
            problem = _float_problem(item)
            if problem:
                found.append((where, problem))
        elif isinstance(item, dict):
            entries = []
            for key, child in item.items():
                if isinstance(key, str):
                    problem = _string_problem(key)
                    if problem:
                        found.append(((*where, key), f"the key {problem}"))
                entries.append(((*where, key if isinstance(key, (str, int)) else str(key)), child, depth + 1))
            stack.extend(reversed(entries))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([((*where, index), child, depth + 1) for index, child in enumerate(item)]))
        # numbers other than floats, booleans, None and already-built models are fine as they are
    return found[:MAX_REPORTED]


_CHECKED: ContextVar[bool] = ContextVar("clean_model_content_checked", default=False)


@contextmanager
def checked_content() -> Iterator[None]:
    """Within it, :class:`CleanModel` validates without walking its input: the content was checked already."""
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


class CleanModel(BaseModel):
    """Base of every request and input model: refuses unstorable text and numbers with their field path."""

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_unstorable(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if _CHECKED.get():
            return handler(data)
        problems = unstorable(data)
        if problems:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("unstorable_value", "{reason}", {"reason": reason}),
                        loc=where,
                        input=_shown(data, where),
                    )
                    for where, reason in problems
                ],
            )
        with checked_content():  # the models nested in this one were part of this walk
            return handler(data)


def _shown(data: Any, where: FieldPath) -> Any:
    """The offending value itself (for the error's ``input``)."""
    for part in where:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
