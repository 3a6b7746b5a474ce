"""The audit log against the Temporal history: the events recorded, and the requests the workflow accepted."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.update.v1 import Request
from temporalio.client import WorkflowHistory

from approvals.audit.chain import verify_chain
from approvals.audit.findings import Finding, FindingKind, Severity, finding, plain
from approvals.audit.history import (
    Histories,
    carried_in,
    check_runs,
    history_events,
    recorded_batch_of,
    recorded_batches,
    run_id,
    runs_of,
)
from approvals.operations import by_update_name
from schemas.converter import data_converter
from schemas.events import DomainEvent, in_force, superseded_by_resets
from schemas.principal import Principal


class DecisionRequest(BaseModel):
    """A reviewer's or applicant's request as the Temporal history holds it (an accepted Workflow Update)."""

    model_config = ConfigDict(frozen=True)

    update_id: str
    name: str
    request: dict[str, Any]
    accepted_event_id: int
    after_seq: int = Field(description="Last event seq recorded before the update was accepted.")
    result_last_seq: int | None = Field(None, description="`last_seq` of the update's result; None: failed/open.")
    run: int = Field(1, description="Which run of the case (1-based) accepted it.")

    @property
    def where(self) -> str:
        return f"history event {self.accepted_event_id}" + (f" of run {self.run}" if self.run > 1 else "")


def decision_requests(history: Histories) -> list[DecisionRequest]:
    """Every accepted Workflow Update of the history (every run, in order), with its request and result.

    An update never spans runs (a run continues as new only once every handler has finished); the seq
    recorded before it carries over from the run before, or from what a continued run carried in.
    """
    accepted: dict[tuple[int, str], DecisionRequest] = {}
    recorded_upto = 0
    for run, one in enumerate(runs_of(history), start=1):
        recorded_upto = max(recorded_upto, (carried_in(one) or (0, ""))[0])
        recorded_upto = _run_decision_requests(one, run, recorded_upto, accepted)
    return list(accepted.values())


def _run_decision_requests(
    history: WorkflowHistory, run: int, recorded_upto: int, accepted: dict[tuple[int, str], DecisionRequest]
) -> int:
    converter = data_converter.payload_converter
    admitted: dict[str, Request] = {}
    """Requests the server wrote before a worker took them: those a reset re-applied to the new run."""
    for event in history.events:
        batch = recorded_batch_of(event)
        if batch is not None:
            recorded_upto = max([recorded_upto, *(e.seq for e in batch.events)])
        elif event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
            request = event.workflow_execution_update_admitted_event_attributes.request
            admitted[request.meta.update_id] = request
        elif event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attributes = event.workflow_execution_update_accepted_event_attributes
            request = admitted.get(attributes.protocol_instance_id) or attributes.accepted_request
            args = converter.from_payloads(list(request.input.args.payloads))
            accepted[(run, request.meta.update_id)] = DecisionRequest(
                update_id=request.meta.update_id,
                name=request.input.name,
                request=args[0] if args and isinstance(args[0], dict) else {},
                accepted_event_id=event.event_id,
                after_seq=recorded_upto,
                run=run,
            )
        elif event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attributes = event.workflow_execution_update_completed_event_attributes
            known = accepted.get((run, attributes.meta.update_id))
            if known is not None and attributes.outcome.HasField("success"):
                [result] = converter.from_payloads(list(attributes.outcome.success.payloads)) or [None]
                last_seq = result.get("last_seq") if isinstance(result, dict) else None
                accepted[(run, known.update_id)] = known.model_copy(update={"result_last_seq": last_seq})
    return recorded_upto


def check_decisions(events: Sequence[DomainEvent], history: Histories) -> list[Finding]:
    """Every request the workflow accepted and completed is in the log: same actor, task and content.

    The ``record_events`` inputs are what the workflow *made* of the requests; the accepted Workflow
    Updates are the requests themselves, as the API sent them. Comparing the log with both means neither
    a rewritten row nor workflow code that recorded something else than what was asked goes unnoticed.
    """
    findings: list[Finding] = []
    operations = by_update_name()
    events = in_force(events)  # a request the reset run accepted again is answered by the reset run's events
    for decision in decision_requests(history):
        operation = operations.get(decision.name)
        if operation is None or decision.result_last_seq is None:
            continue
        event_type = operation.recorded_event
        request = decision.request
        actor = request.get("actor") or {}
        candidates = [
            event
            for event in events
            if decision.after_seq < event.seq <= decision.result_last_seq
            and event.type == event_type
            and (request.get("task_id") is None or event.task_id == request.get("task_id"))
        ]
        candidates.sort(key=lambda event: event.actor.id != actor.get("id"))  # the requester's own row first
        described = f"the {decision.name} request by {plain(actor.get('id'))} ({decision.where})"
        if not candidates:
            findings.append(
                finding(
                    decision.after_seq + 1,
                    FindingKind.decision_not_logged,
                    f"{described} has no {event_type} row in seq "
                    f"{decision.after_seq + 1}..{decision.result_last_seq} of the audit log",
                )
            )
            continue
        event = candidates[0]
        differing = [
            name
            for name, key in operation.agrees
            if _json_ready(request.get(name)) != _json_ready(event.payload.get(key))
            and not (request.get(name) in (None, "", []) and event.payload.get(key) in (None, "", []))
        ]
        if _json_ready(event.actor.model_dump(mode="json")) != _json_ready(
            Principal.model_validate(actor).model_dump(mode="json")
        ):
            differing.insert(0, "actor")
        if differing:
            findings.append(
                finding(
                    event.seq,
                    FindingKind.differs_from_history,
                    f"seq {event.seq} ({event.type}) does not say what {described} asked: {', '.join(differing)}",
                )
            )
    return findings


def _json_ready(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


_COMPARED_FIELDS = ("type", "actor", "at", "legal_basis", "stage_id", "task_id", "payload", "prev_hash", "hash")


def cross_check(events: Sequence[DomainEvent], history: Histories) -> list[Finding]:
    """Compares the audit log with the events the workflow recorded according to its Temporal history.

    ``history`` is every run of the case (a case that continued as new has several; one sequence and one
    hash chain run through all of them). Every event in the runs' ``record_events`` inputs must be in the
    log with the same actor, payload, hash and every other field; every row of the log must be in one of
    them. Events of a ``record_events`` task that has not completed yet (a running case) may legitimately
    be missing from the log: that is a note. When the first run present continued an earlier run that is
    not, the log's rows up to the seq it carried in are checked against the hash it carried instead. The rows
    of a run an operator reset, from the reset point on, are in the old run's history, not in the new run's:
    a ``case.reset`` the new run recorded vouches for them (its ``prev_hash`` is the last of them, and the hash
    chain links them up to it).
    """
    runs = runs_of(history)
    findings: list[Finding] = check_runs(runs)
    try:
        batches = recorded_batches(runs)
    except Exception as error:  # noqa: BLE001 - an unreadable history is a finding, not a crash
        return [finding(None, FindingKind.history_unreadable, f"record_events inputs cannot be decoded: {error}")]
    carried = carried_in(runs[0]) if runs else None
    before = carried[0] if carried else 0
    if carried:
        last_seq, last_hash = carried
        row = next((event for event in events if event.seq == last_seq), None)
        if row is not None and row.hash != last_hash:
            findings.append(
                finding(
                    last_seq,
                    FindingKind.differs_from_history,
                    f"seq {last_seq} does not have the hash the next run carried in from it ({last_hash[:12]}…)",
                )
            )
    recorded: dict[int, tuple[DomainEvent, bool]] = {}
    for item in batches:
        for event in item.batch.events:
            known = recorded.get(event.seq)
            if known is not None and known[0].hash != event.hash:
                findings.append(
                    finding(
                        event.seq,
                        FindingKind.differs_from_history,
                        f"the history records seq {event.seq} twice with different hashes",
                    )
                )
            recorded[event.seq] = (event, item.completed or (known is not None and known[1]))
    # Only a case.reset the history holds vouches for the rows it superseded; one forged into the log is not in it.
    superseded = superseded_by_resets(event for event, _ in recorded.values())
    logged: dict[int, DomainEvent] = {}
    for event in events:
        logged.setdefault(event.seq, event)
    for seq in sorted(recorded.keys() | logged.keys()):
        in_history, in_log = recorded.get(seq), logged.get(seq)
        if in_log is None:
            assert in_history is not None
            event, completed = in_history
            if completed:
                findings.append(
                    finding(
                        seq,
                        FindingKind.missing_from_log,
                        f"seq {seq} ({event.type} by {event.actor.id}) is in the Temporal history but not in the "
                        "audit log (deleted)",
                    )
                )
            else:
                findings.append(
                    finding(
                        seq,
                        FindingKind.pending,
                        f"seq {seq} ({event.type}) is being recorded (its record_events task has not completed)",
                        Severity.note,
                    )
                )
            continue
        if in_history is None:
            if seq <= before:
                continue  # recorded by an earlier run not in the record: vouched for by the carried hash
            if seq in superseded:
                continue  # recorded by the run a reset replaced: vouched for by the chain to the case.reset
            findings.append(
                finding(
                    seq,
                    FindingKind.not_in_history,
                    f"seq {seq} ({in_log.type} by {in_log.actor.id}) is in the audit log but the workflow never "
                    "recorded it (forged or inserted)",
                )
            )
            continue
        differences = _differences(in_log, in_history[0])
        if differences:
            findings.append(
                finding(
                    seq,
                    FindingKind.differs_from_history,
                    f"seq {seq} differs from the history in {', '.join(differences)}",
                )
            )
    findings += check_decisions(events, runs)
    return sorted(findings, key=lambda f: (f.seq or 0, f.kind.value))


def check_superseded(events: Sequence[DomainEvent], replaced: Mapping[str, WorkflowHistory | None]) -> list[Finding]:
    """The rows a ``case.reset`` superseded against the histories of the runs the resets replaced.

    The hash chain ties those rows to the ``case.reset`` after them, but a row appended to the log before the
    reset (a forger's, sealed onto the chain) would be tied just as well: only the old run's history tells
    that its workflow recorded them. ``replaced``: each run a ``case.reset`` names as old, with its history, or
    None when Temporal no longer has it (then the rows are vouched for by the chain alone: a note).
    """
    superseded = superseded_by_resets(events)
    gone = sorted(run for run, history in replaced.items() if history is None)
    findings = [
        finding(
            None,
            FindingKind.run_missing,
            f"run {run}, which a reset replaced, is no longer in Temporal: the rows it recorded are checked by the "
            "hash chain alone",
            Severity.note,
        )
        for run in gone
    ]
    if gone or not superseded:
        return findings
    sealed = {
        (event.seq, event.hash)
        for history in replaced.values()
        if history is not None
        for item in recorded_batches(history)
        for event in item.batch.events
    }
    return findings + [
        finding(
            event.seq,
            FindingKind.not_in_history,
            f"seq {event.seq} ({event.type} by {event.actor.id}) was superseded by the reset at seq "
            f"{superseded[event.seq]}, but no run it replaced recorded it (forged or inserted before the reset)",
        )
        for event in events
        if event.seq in superseded and (event.seq, event.hash) not in sealed
    ]


def _differences(logged: DomainEvent, recorded: DomainEvent) -> list[str]:
    differences = []
    for name in _COMPARED_FIELDS:
        ours, theirs = getattr(logged, name), getattr(recorded, name)
        if name == "actor":
            ours, theirs = ours.model_dump(mode="json"), theirs.model_dump(mode="json")
            if ours != theirs:
                differences.append(f"actor (log: {plain(ours['id'])}, history: {plain(theirs['id'])})")
            continue
        if name == "payload":
            ours, theirs = json.loads(json.dumps(ours, default=str)), json.loads(json.dumps(theirs, default=str))
        if ours != theirs:
            if name in ("payload", "hash", "prev_hash"):
                differences.append(name)
            else:
                differences.append(f"{name} (log: {plain(ours)}, history: {plain(theirs)})")
    return differences


class VerifyReport(BaseModel):
    """The verdict on one case's record: intact when no finding is an error."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    events: int
    history_events: int | None = Field(None, description="Domain events in the history; None when not checked.")
    run_ids: list[str] = Field(
        default_factory=list, description="The workflow runs checked, first to latest (continue-as-new)."
    )
    history_source: str | None = Field(
        None,
        description="Where the history checked came from: `temporal`, `archive` (the engine's copy, once "
        "Temporal's retention deleted it) or `archive and temporal`; for a bundle, where its exporter read it. "
        "None when no history was checked.",
    )
    last_seq: int | None
    last_hash: str | None
    findings: list[Finding]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Serialised with the report, so API clients need not re-derive it."""
        return not any(finding.severity is Severity.error for finding in self.findings)


def verify(
    case_id: str,
    events: Sequence[DomainEvent],
    history: Histories | None = None,
    *,
    extra_findings: Iterable[Finding] = (),
    history_source: str | None = None,
) -> VerifyReport:
    """Hash chain, and when a history is given (one run, or every run of the case), the cross-check against it."""
    findings = list(extra_findings) + verify_chain(events, case_id=case_id)
    recorded = None
    run_ids: list[str] = []
    if history is not None:
        findings += cross_check(events, history)
        try:
            recorded = len(history_events(history))
        except Exception:  # noqa: BLE001 - cross_check reported it
            recorded = None
        run_ids = [found for run in runs_of(history) if (found := run_id(run))]
    last = events[-1] if events else None
    return VerifyReport(
        case_id=case_id,
        events=len(events),
        history_events=recorded,
        run_ids=run_ids,
        history_source=history_source if history is not None else None,
        last_seq=last.seq if last else None,
        last_hash=last.hash if last else None,
        findings=sorted(findings, key=lambda f: (f.seq or 0, f.kind.value)),
    )
