"""``approvals <operation>``: one command per entry of the operation registry (``approvals.operations``).

Nothing here names an operation: each command is derived from its entry, so an operation added to the
registry is on the command line at once, with the same name as its URL segment.

- The first argument is what the operation acts on: ``TASK_ID``, ``CASE_ID``, or for an operation on
  either (comment, cc) ``TARGET``: a task id (``<case id>/<stage>/<n>``, the only ids with a ``/``) acts on
  that task, a case id (``<process>:<business key>``) on the whole case.
- The request model's required fields follow as arguments, in declaration order (``decide TASK_ID
  DECISION``); its optional fields are options named after them (``--return-to``, ``--expected-version``;
  ``--comment`` is also ``-m``); a list field is a repeatable option named in the singular
  (``--condition``), each value of a list of objects being a JSON object or its fields in order separated
  by ``|`` (``--document 'URI|SHA256|SIZE|NAME'``). Fields the registry fixes (``return``) are not asked.
- Help is the registry's summary, in English and Chinese; choices come from the model.
- The command POSTs ``/v1/tasks/{id}/<name>`` or ``/v1/cases/{id}/<name>`` with a fresh idempotency key
  unless ``--idempotency-key`` is given, and exits 2 on a usage error, 3 when denied, 4 on a server error.
"""

from __future__ import annotations

import enum
import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from approvals.cli.client import DEFAULT_API_URL, ApiUrl, AsJson, IdemKey, Token, operate
from approvals.operations import OPERATIONS, Operation, Scope

SHORT_FLAGS = {"comment": "-m"}
"""One-letter flags people type often; every other option has only its long name."""

TARGETS: dict[tuple[Scope, ...], tuple[str, str]] = {
    (Scope.task,): ("TASK_ID", "The task, <case id>/<stage>/<n>."),
    (Scope.case,): ("CASE_ID", "The case, <process>:<business key>."),
    (Scope.task, Scope.case): (
        "TARGET",
        "A task id (<case id>/<stage>/<n>, the only ids with a '/') acts on that task; a case id "
        "(<process>:<business key>) on the whole case.",
    ),
}
COMMON = ("idempotency_key", "api_url", "token", "as_json")


@dataclass(frozen=True)
class RequestField:
    """One field of an operation's request model, as the command line takes it."""

    name: str
    info: FieldInfo

    @property
    def item_type(self) -> Any:
        """The element type of a list field; None for any other field."""
        annotation = self.info.annotation
        return typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else None

    @property
    def item_model(self) -> type[BaseModel] | None:
        item = self.item_type
        return item if isinstance(item, type) and issubclass(item, BaseModel) else None

    @property
    def choices(self) -> type[enum.Enum] | None:
        """The values an enum or ``Literal`` field allows, as the enum typer shows as choices."""
        annotation = _without_none(self.info.annotation)
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            values = [str(member.value) for member in annotation]
        elif typing.get_origin(annotation) is Literal:
            values = [str(value) for value in typing.get_args(annotation)]
        else:
            return None
        return enum.Enum(self.name, {value: value for value in values}, type=str)  # type: ignore[return-value]

    @property
    def is_argument(self) -> bool:
        return self.info.is_required() and self.item_type is None

    def help(self) -> str:
        described = self.info.description or self.name.replace("_", " ").capitalize() + "."
        if self.item_model is not None:
            scalar = [name for name, info in self.item_model.model_fields.items() if _is_scalar(info)]
            described += f" Repeatable: a JSON object, or {'|'.join(scalar).upper()} (the last ones may be left out)."
        elif self.item_type is not None:
            described += " Repeatable."
        return described

    def parameter(self) -> inspect.Parameter:
        """The typer parameter: an argument, an option, or a repeatable option for a list."""
        flag = "--" + self.name.replace("_", "-")
        choices = self.choices
        if self.is_argument:
            spec: Any = typer.Argument(metavar=self.name.upper(), help=self.help(), show_default=False)
            annotation: Any = choices or str
            default: Any = inspect.Parameter.empty
        elif self.item_type is not None:
            flag = flag.removesuffix("s")  # a value per option: --condition, --document
            spec = typer.Option(flag, help=self.help(), show_default=False)
            annotation = list[str] if self.info.is_required() else list[str] | None
            default = inspect.Parameter.empty if self.info.is_required() else None
        else:
            spec = typer.Option(flag, *_short_flag(self.name), help=self.help())
            annotation = (choices or _without_none(self.info.annotation)) | None
            default = None  # not sent: the API applies the model's default
        keyword = inspect.Parameter.KEYWORD_ONLY
        return inspect.Parameter(self.name, keyword, annotation=Annotated[annotation, spec], default=default)

    def value(self, given: Any) -> Any:
        """The JSON value sent for what was given on the command line."""
        if isinstance(given, enum.Enum):
            return given.value
        if isinstance(given, date):  # e.g. --due-date 2026-12-31
            return given.isoformat()
        model = self.item_model
        if model is None:
            return given
        return [_parse_item(model, spec, self.name) for spec in given]


def _without_none(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _is_scalar(info: FieldInfo) -> bool:
    return typing.get_origin(info.annotation) is not list


def _short_flag(name: str) -> tuple[str, ...]:
    return (SHORT_FLAGS[name],) if name in SHORT_FLAGS else ()


def _parse_item(model: type[BaseModel], spec: str, field_name: str) -> dict[str, Any]:
    """One element of a list of objects: a JSON object, or the model's scalar fields in order, ``|``-separated."""
    flag = "--" + field_name.replace("_", "-").removesuffix("s")
    try:
        if spec.lstrip().startswith("{"):
            data = json.loads(spec)
        else:
            scalar = [name for name, info in model.model_fields.items() if _is_scalar(info)]
            parts = spec.split("|")
            if len(parts) > len(scalar):
                raise ValueError(f"at most {len(scalar)} '|'-separated fields: {'|'.join(scalar).upper()}")
            data = dict(zip(scalar, parts, strict=False))
        return model.model_validate(data).model_dump(mode="json")
    except (ValueError, ValidationError) as error:
        raise typer.BadParameter(f"{spec!r}: {error}", param_hint=flag) from None


def request_fields(operation: Operation) -> list[RequestField]:
    """The fields a client sends, in the request model's order (the actor and the target come from elsewhere)."""
    return [
        RequestField(name, info)
        for name, info in operation.request_model.model_fields.items()
        if name not in operation.body_fields_excluded
    ]


def target_path(operation: Operation, target: str) -> str:
    """``/v1/tasks/{id}/<name>`` or ``/v1/cases/{id}/<name>``; a target with a ``/`` is a task."""
    on_task = Scope.task in operation.scopes and ("/" in target or Scope.case not in operation.scopes)
    return f"/v1/{'tasks' if on_task else 'cases'}/{target}/{operation.name}"


def operation_command(operation: Operation) -> Callable[..., None]:
    """The command running ``operation``; its parameters are declared through ``__signature__`` for typer."""
    fields = request_fields(operation)
    metavar, target_help = TARGETS[operation.scopes]

    def command(target: str, **given: Any) -> None:
        common = {name: given.pop(name) for name in COMMON}
        body = {field.name: field.value(given[field.name]) for field in fields if given[field.name] is not None}
        path = target_path(operation, target)
        operate(common["api_url"], common["token"], common["as_json"], path, body, common["idempotency_key"])

    keyword = inspect.Parameter.KEYWORD_ONLY
    target = inspect.Parameter(
        "target", keyword, annotation=Annotated[str, typer.Argument(metavar=metavar, help=target_help)]
    )
    common = [
        inspect.Parameter("idempotency_key", keyword, annotation=IdemKey, default=None),
        inspect.Parameter("api_url", keyword, annotation=ApiUrl, default=DEFAULT_API_URL),
        inspect.Parameter("token", keyword, annotation=Token, default=None),
        inspect.Parameter("as_json", keyword, annotation=AsJson, default=False),
    ]
    parameters = [field.parameter() for field in fields]
    # Arguments first, in the model's order; options after them (a signature needs defaults last).
    ordered = [p for p in parameters if p.default is inspect.Parameter.empty] + [
        p for p in parameters if p.default is not inspect.Parameter.empty
    ]
    command.__signature__ = inspect.Signature([target, *ordered, *common])  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = operation.name.replace("-", "_")
    command.__doc__ = f"{operation.summary}\n\n{operation.summary_zh}"
    return command


def register(app: typer.Typer) -> None:
    """Adds a command per registered operation to the ``approvals`` CLI, in the registry's order."""
    for operation in OPERATIONS:
        app.command(operation.name, rich_help_panel="Operations")(operation_command(operation))
