"""The edge refuses what PostgreSQL cannot store exactly as it was hashed, and bounds what a request carries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from approvals.processes import GenericStartRequest
from approvals.service import DENIED_REQUEST_MAX_BYTES, denied_request_json
from schemas.case import (
    DATA_MAX_BYTES,
    CaseInput,
    CcRequest,
    CommentRequest,
    DecideRequest,
    Finding,
    SupplementRequest,
)
from schemas.principal import Principal
from schemas.text import MAX_DEPTH, MAX_REPORTED, CleanModel, unstorable
from tests.cases import APPLICANT, SERVICE, definition, stage

ACTOR = {"id": "alice", "roles": ["reviewer"]}


def fields(error: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [".".join(str(part) for part in item["loc"]) for item in error.value.errors()]


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("a\x00b", ()),
        ({"a": ["ok", {"b": "x\x00"}]}, ("a", 1, "b")),
        ({"bad\x00key": 1}, ("bad\x00key",)),
        (["\ud800"], (0,)),
        ({"x": "\udfff tail"}, ("x",)),
        ({"n": 1e20}, ("n",)),
        ({"n": 1e-7}, ("n",)),
        ({"n": -0.0}, ("n",)),
        ({"n": float("inf")}, ("n",)),
        ({"n": float("nan")}, ("n",)),
        ((1, (2, -1e300)), (1, 1)),
    ],
)
def test_the_walker_finds_unstorable_values_with_their_path(value: Any, path: tuple[Any, ...]) -> None:
    [(found, reason)] = unstorable(value)
    assert found == path and reason


@pytest.mark.parametrize(
    "value",
    ["", "中文 text, emoji 😀, tab\t and newline\n", 24.5, 0.0, 1.0, 123456.789, 10**30, -3, True, None,
     {"a": [1, 2.5, {"b": "c"}]}, Principal(id="p")],
)  # fmt: skip
def test_plain_text_and_decimals_are_storable(value: Any) -> None:
    assert unstorable(value) == []


def test_the_walker_reports_a_bounded_number_of_problems_and_survives_deep_nesting() -> None:
    assert len(unstorable(["\x00"] * 1000)) == MAX_REPORTED
    deep: Any = "\x00"
    for _ in range(5000):
        deep = [deep]
    [(path, reason)] = unstorable(deep)  # the nesting is reported, where it first goes too deep
    assert path == (0,) * (MAX_DEPTH + 1) and "nested" in reason
    assert unstorable(_nested(MAX_DEPTH - 1, "\x00")) == [((*("k",) * (MAX_DEPTH - 1), "k"), unstorable("\x00")[0][1])]


def _nested(depth: int, leaf: Any = "leaf") -> Any:
    """``{"k": {"k": ... leaf}}``: ``depth`` objects below the root's own field ``k``."""
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return {"k": value}


def test_nesting_deeper_than_temporal_carries_is_refused_at_the_edge() -> None:
    """Regression (hostile-input fault test): application data nested ~250 levels passed validation, the API
    answered 201, and the worker could not decode the workflow's input (pydantic's JSON parser stops at a
    recursion limit) so the case never ran and was never recorded; ~600 levels made the start itself a 500
    (the Temporal client could not serialise the input)."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    def start(data: dict[str, Any]) -> GenericStartRequest:
        return GenericStartRequest.model_validate(
            {"business_key": "K-1", "title": "t", "applicant": {"id": "a"}, "data": data,
             "definition": definition(stage("review", assignees=("alice",))).model_dump(mode="json")}
        )  # fmt: skip

    for depth in (250, 600):
        with pytest.raises(ValidationError) as error:
            start(_nested(depth))
        [found] = fields(error)
        assert found.startswith("data.k.k.") and "nested more than" in error.value.errors()[0]["msg"]

    deepest = start(_nested(MAX_DEPTH - 3))  # data.k... up to the limit: carried through Temporal intact
    case = CaseInput(
        business_key="K-1", definition=deepest.definition, title="t", applicant=APPLICANT, started_by=SERVICE,
        data=deepest.data,
    )  # fmt: skip
    converter = pydantic_data_converter.payload_converter
    [back] = converter.from_payloads(converter.to_payloads([case]), [CaseInput])
    assert back.data == case.data


def test_reminders_are_counted_back_a_bounded_number_of_working_days() -> None:
    """Regression (hostile-input fault test): remind_before_working_days had no upper bound; 10**7 made the
    workflow count back past year 1 (OverflowError in every workflow task), so the started case never ran."""
    from schemas.process import CaseDeadline, Deadline

    for model in (Deadline, CaseDeadline):
        assert model.model_validate({"working_days": 20, "remind_before_working_days": 365})
        with pytest.raises(ValidationError) as error:
            model.model_validate({"working_days": 20, "remind_before_working_days": 10**7})
        assert fields(error) == ["remind_before_working_days"]


def test_every_request_model_refuses_with_the_field_path() -> None:
    with pytest.raises(ValidationError) as error:
        CommentRequest.model_validate({"actor": ACTOR, "text": "hello\x00"})
    assert fields(error) == ["text"]
    assert "NUL" in error.value.errors()[0]["msg"]

    with pytest.raises(ValidationError) as error:
        CommentRequest.model_validate({"actor": {"id": "al\x00ice"}, "text": "hello"})
    assert fields(error) == ["actor.id"]

    with pytest.raises(ValidationError) as error:
        DecideRequest.model_validate(
            {"actor": ACTOR, "task_id": "t", "decision": "approve",
             "findings": [{"criterion": "c1", "holds": True, "note": "ok"},
                          {"criterion": "c2", "holds": True, "evidence": [{"uri": "s3://x\x00", "sha256": "a" * 64,
                                                                           "size": 1}]}]}
        )  # fmt: skip
    assert fields(error) == ["findings.1.evidence.0.uri"]

    with pytest.raises(ValidationError) as error:
        GenericStartRequest.model_validate(
            {"business_key": "K-1", "title": "t", "applicant": {"id": "a"}, "definition": {},
             "data": {"area": 1e20, "ok": 24.5, "zero": -0.0}}
        )  # fmt: skip
    assert fields(error) == ["data.area", "data.zero"]
    assert "exponent" in error.value.errors()[0]["msg"]

    # the models constructed from already-validated models are not re-walked into (and pass)
    assert CommentRequest(actor=Principal(id="a"), text="fine").text == "fine"
    assert issubclass(SupplementRequest, CleanModel) and issubclass(Principal, CleanModel)


def test_content_is_walked_once_at_the_edge_and_not_when_a_payload_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outermost model walks its whole input, the models nested in it included (their problems are
    reported with their paths, as above); decoding a Temporal payload with the engine's converter walks
    nothing: the payload holds what a model checked when it was built, and a worker decodes every payload of
    a case again at every cache miss. So a payload built around the API, straight into Temporal, is not
    refused when it is decoded: the API is the edge."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    from schemas import text
    from schemas.converter import data_converter

    walks: list[object] = []
    walk = text.unstorable
    monkeypatch.setattr(text, "unstorable", lambda value, path=(): walks.append(value) or walk(value, path))
    decide = {
        "actor": ACTOR, "task_id": "t", "decision": "approve",
        "findings": [{"criterion": "c1", "holds": True, "evidence": [{"uri": "s3://x", "sha256": "a" * 64, "size": 1}]}],
    }  # fmt: skip
    assert DecideRequest.model_validate(decide).findings[0].evidence[0].uri == "s3://x"
    assert walks == [decide]  # once, not again for the actor, the finding and its evidence

    raw = {"actor": ACTOR, "text": "hello\x00"}
    [payload] = pydantic_data_converter.payload_converter.to_payloads([raw])
    with pytest.raises(ValidationError):
        pydantic_data_converter.payload_converter.from_payloads([payload], [CommentRequest])
    [decoded] = data_converter.payload_converter.from_payloads([payload], [CommentRequest])
    assert decoded.text == "hello\x00"
    with pytest.raises(ValidationError):  # outside a decode the walk is back
        CommentRequest.model_validate(raw)


def test_decide_request_bounds() -> None:
    base = {"actor": ACTOR, "task_id": "t", "decision": "approve_with_conditions"}
    assert len(DecideRequest.model_validate({**base, "conditions": ["c" * 1000] * 20}).conditions) == 20
    for conditions, field in (
        (["c"] * 21, "conditions"),
        (["c" * 1001], "conditions.0"),
        ([""], "conditions.0"),
    ):
        with pytest.raises(ValidationError) as error:
            DecideRequest.model_validate({**base, "conditions": conditions})
        assert fields(error) == [field]
    finding = {"criterion": "c", "holds": True}
    with pytest.raises(ValidationError) as error:
        DecideRequest.model_validate({**base, "decision": "approve", "findings": [finding] * 51})
    assert fields(error) == ["findings"]
    evidence = {"uri": "s3://x", "sha256": "a" * 64, "size": 1}
    with pytest.raises(ValidationError) as error:
        Finding.model_validate({**finding, "evidence": [evidence] * 21})
    assert fields(error) == ["evidence"]
    with pytest.raises(ValidationError) as error:
        CcRequest.model_validate({"actor": ACTOR, "observers": ["ok", "u" * 129]})
    assert fields(error) == ["observers.1"]


def test_case_data_is_bounded_by_its_canonical_json_size() -> None:
    def case_input(data: dict[str, Any]) -> CaseInput:
        return CaseInput(
            business_key="K-1",
            definition=definition(stage("review", assignees=("alice",))),
            title="t",
            applicant=APPLICANT,
            started_by=SERVICE,
            data=data,
        )

    assert case_input({"blob": "x" * (DATA_MAX_BYTES - 100)}).data
    with pytest.raises(ValidationError) as error:
        case_input({"blob": "条" * (DATA_MAX_BYTES // 3 + 10)})
    assert fields(error) == ["data"]
    message = error.value.errors()[0]["msg"]
    assert str(DATA_MAX_BYTES) in message and "bytes" in message


def test_a_denied_request_is_stored_whole_when_small_and_truncated_as_valid_json_when_large() -> None:
    small = {"text": "hello"}
    assert json.loads(denied_request_json(small)) == small
    large = {"conditions": ['"quoted" 条件' * 100] * 200, "nul": "a\x00b"}
    stored = denied_request_json(large)
    assert len(stored.encode()) <= DENIED_REQUEST_MAX_BYTES
    record = json.loads(stored)
    assert record["truncated"] is True and record["bytes"] > DENIED_REQUEST_MAX_BYTES
    assert record["head"].startswith('{"conditions": ["\\"quoted\\" 条件')
    assert "\x00" not in stored


def test_a_process_definition_is_bounded_by_its_canonical_json_size() -> None:
    """Regression (hostile-input fault test): a generic start whose stage title was 1.9 MB passed the 2 MB body
    limit and was answered 201, but the recording's marker carried the definition three times (5.7 MB, over
    Temporal's 2 MB payload limit), so every workflow task failed and the case was never recorded."""
    from schemas.process import DEFINITION_MAX_BYTES, ProcessDefinition

    steps = [stage("review", assignees=("alice",)).model_dump(mode="json")]
    fine = {"process": "generic", "title": "t" * (DEFINITION_MAX_BYTES // 2), "legal_basis": "Art. 4", "steps": steps}
    assert ProcessDefinition.model_validate(fine)
    with pytest.raises(ValidationError) as error:
        ProcessDefinition.model_validate({**fine, "steps": [{**steps[0], "title": "x" * 1_900_000}]})
    assert str(DEFINITION_MAX_BYTES) in error.value.errors()[0]["msg"]
