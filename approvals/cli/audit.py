"""``approvals audit``: export, replay, verify and explain cases, for people who did not write the code.

Every command takes either a live case id (read from DATABASE_URL and TEMPORAL_ADDRESS) or an exported
bundle directory (offline: no server, no database; verifying one needs the engine's public key). Exit
status: 0 the record is intact / every history replays, 3 it is not (findings are printed), 1 a service is
unreachable, 2 a setting is missing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from approvals.cli.output import reported_errors, timeline_table
from approvals.event_wording import Lang

if TYPE_CHECKING:
    import asyncpg
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    from temporalio.client import Client

    from approvals.audit.attachments import AttachmentFetching
    from approvals.audit.crosscheck import VerifyReport
    from schemas.events import DomainEvent

AUDIT_FAILED = 3
"""Exit status when a record does not verify or a history does not replay."""

app = typer.Typer(
    name="audit",
    help="Export, replay, verify and explain cases (live case ids or exported bundle directories).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
errors = Console(stderr=True)

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    with reported_errors():
        return asyncio.run(coroutine)


@asynccontextmanager
async def _services(
    *, temporal: bool = True, database: bool = True
) -> AsyncIterator[tuple[Client | None, asyncpg.Pool | None]]:
    from approvals import db
    from approvals import temporal as temporal_client
    from approvals.settings import load_settings

    settings = load_settings()
    client = await temporal_client.connect(settings) if temporal else None
    pool = await db.create_pool(settings, max_size=8) if database else None
    try:
        yield client, pool
    finally:
        if pool is not None:
            await pool.close()


def _is_bundle(source: str) -> bool:
    from approvals.audit.bundle import is_bundle

    return is_bundle(Path(source))


async def _events_of(source: str) -> list[DomainEvent]:
    """Audit events of a bundle (offline) or of a live case (PostgreSQL only)."""
    from approvals.audit.bundle import load_bundle
    from approvals.storage.queries import case_events

    if _is_bundle(source):
        return load_bundle(Path(source)).events
    async with _services(temporal=False) as (_, pool):
        assert pool is not None
        events = await case_events(pool, source)
    if not events:
        raise _fail(f"case {source} has no audit events (unknown case id, or not a bundle directory)", 1)
    return events


def _moment(option: str, text: str) -> datetime:
    """An ISO 8601 time given on the command line; without an offset, UTC+8 local time."""
    from approvals.event_wording import CHINA_TIME

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        example = "e.g. 2026-03-02T10:00 or 2026-03-02T02:00Z"
        raise _fail(f"{option} {text!r} is not an ISO 8601 time ({example})", 2) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_TIME)


def _fail(message: str, code: int) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _signing_key() -> Ed25519PrivateKey:
    """The engine's key (AUDIT_SIGNING_KEY_PATH): exports and checkpoints are signed with it."""
    from approvals.audit.checkpoint import load_signing_key
    from approvals.settings import load_settings

    path = load_settings().audit_signing_key_path
    if path is None:
        raise _fail(
            "AUDIT_SIGNING_KEY_PATH is not set: give the PEM file of the engine's Ed25519 key, which signs "
            "exports and checkpoints (`approvals dev` writes one to <DATA_DIR>/audit-signing-key.pem)",
            2,
        )
    try:
        return load_signing_key(path)
    except (OSError, ValueError) as error:
        raise _fail(f"AUDIT_SIGNING_KEY_PATH {path}: {error}", 2) from None


def _trusted_keys(paths: list[Path]) -> list[Ed25519PublicKey]:
    """The public keys given with --public-key, else AUDIT_PUBLIC_KEY_PATH's."""
    from approvals.audit.checkpoint import load_public_key
    from approvals.settings import load_settings

    configured = load_settings().audit_public_key_path
    paths = paths or ([configured] if configured else [])
    if not paths:
        raise _fail(
            "no public key to check bundle signatures against: give --public-key <PEM file> or set "
            "AUDIT_PUBLIC_KEY_PATH (the engine's key; `approvals dev` writes <DATA_DIR>/audit-signing-key.pub.pem)",
            2,
        )
    try:
        return [load_public_key(path) for path in paths]
    except (OSError, ValueError) as error:
        raise _fail(f"public key: {error}", 2) from None


# ------------------------------------------------------------------ export


@app.command()
def export(
    cases: Annotated[list[str] | None, typer.Argument(help="Case (workflow) ids to export.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory the bundles are written to.")] = Path(
        "audit-export"
    ),
    all_cases: Annotated[bool, typer.Option("--all", help="Every case in the database.")] = False,
    process: Annotated[str | None, typer.Option(help="Only cases of this process (with --all or alone).")] = None,
    status: Annotated[str | None, typer.Option(help="Only cases with this status (with --all or alone).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Cases exported at the same time.")] = 8,
) -> None:
    """One bundle per case: history.json (as `temporal workflow show --output json` prints it; a case that
    continued as new adds history-run-2.json … for its later runs), events.json, manifest.json (SHA-256 of
    each file, the run ids in order, the proof that the last event is sealed in a signed checkpoint) and
    manifest.sig.json (the signature by AUDIT_SIGNING_KEY_PATH)."""
    if not cases and not (all_cases or process or status):
        raise _fail("name case ids, or select cases with --all / --process / --status", 2)
    key = _signing_key()
    written, failed = _run(
        _export(list(cases or []), out, all_cases or bool(process or status), process, status, concurrency, key)
    )
    console.print(f"exported {written} case(s) to {out}" + (f", [red]{failed} failed[/red]" if failed else ""))
    if failed:
        raise typer.Exit(1)


async def _export(
    case_ids: list[str],
    out: Path,
    select: bool,
    process: str | None,
    status: str | None,
    concurrency: int,
    key: Ed25519PrivateKey,
) -> tuple[int, int]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from approvals.audit.live import export_case
    from approvals.audit.sealing import Notary
    from approvals.storage.queries import list_cases
    from schemas.search import CaseSearch

    async with _services() as (client, pool):
        assert client is not None and pool is not None
        notary = Notary(pool, key)
        if select:
            offset = 0
            while page := await list_cases(pool, CaseSearch(process=process, status=status, limit=200, offset=offset)):
                case_ids += [case.case_id for case in page]
                offset += len(page)
        case_ids = list(dict.fromkeys(case_ids))
        gate = asyncio.Semaphore(concurrency)
        failed = 0
        with Progress(
            TextColumn("export"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=errors
        ) as progress:
            bar = progress.add_task("export", total=len(case_ids))

            async def one(case_id: str) -> None:
                nonlocal failed
                async with gate:
                    try:
                        await export_case(client, notary, case_id, out)
                    except Exception as error:  # noqa: BLE001 - one unreadable case does not stop the rest
                        failed += 1
                        progress.console.print(f"[red]✘[/red] {case_id}: {error}", highlight=False)
                    progress.advance(bar)

            await asyncio.gather(*(one(case_id) for case_id in case_ids))
    return len(case_ids) - failed, failed


# ------------------------------------------------------------------ replay


@app.command()
def replay(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="History files, bundle directories, or directories of them.")
    ] = None,
    case: Annotated[
        list[str] | None, typer.Option("--case", help="Live case id to fetch and replay (repeatable).")
    ] = None,
    from_temporal: Annotated[
        bool,
        typer.Option(
            "--from-temporal",
            help="Replay a sample of live runs (TEMPORAL_ADDRESS): running and recently closed ones, or --query's; "
            "in the sandbox. The check before every deploy (docs/releases.md).",
        ),
    ] = False,
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="With --from-temporal: how many runs at most, newest first.")
    ] = 200,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="With --from-temporal: a visibility query instead, e.g. 'WorkflowType = \"ProjectApprovalWorkflow\"'.",
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=0,
            help="Processes replaying in parallel (0: one per CPU, one per 40 histories at most).",
        ),
    ] = 0,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Run the workflow code in the sandbox, as CI's corpus replay does (about 2x slower; "
            "non-determinism is detected the same either way, the sandbox also fails forbidden calls).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON verdict per line.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print failures and the summary only.")] = False,
) -> None:
    """Replay histories through the current workflow code (no server needed); exit 3 if any fails.

    History files are replayed in parallel processes, one replayer per process, without the workflow
    sandbox unless --sandbox is given: the command-by-command comparison with the history that detects
    non-determinism is the same either way (why: approvals.audit.replay.SANDBOX_FOR_AUDIT).
    """
    from approvals.audit.replay import SANDBOX_FOR_AUDIT, history_paths, replay_jobs

    if not paths and not case and not from_temporal:
        raise _fail("give history paths, --case ids or --from-temporal", 2)
    if query is not None and not from_temporal:
        raise _fail("--query selects live runs: give it with --from-temporal", 2)
    try:
        files = history_paths(paths or [])
    except FileNotFoundError as error:
        raise _fail(str(error), 2) from None
    sandbox = sandbox or SANDBOX_FOR_AUDIT or from_temporal  # before a deploy: as CI replays the corpus
    jobs = replay_jobs(len(files), jobs or None)
    started = time.perf_counter()
    live = LiveSelection(list(case or []), sample if from_temporal else 0, query)
    total, failed = _run(_replay(files, live, jobs, sandbox, as_json, quiet))
    elapsed = time.perf_counter() - started
    if not as_json:
        rate = total / elapsed if elapsed else 0.0
        colour = "red" if failed else "green"
        how = f"{jobs} processes" if files and jobs > 1 else "1 process"
        console.print(
            f"[{colour}]{total - failed} of {total} replayed cleanly[/{colour}]"
            f" ({failed} failed) in {elapsed:.1f}s, {rate:.0f} histories/s"
            f" ({how}, {'in the sandbox' if sandbox else 'without the sandbox'})"
        )
    if failed or not total:
        raise typer.Exit(AUDIT_FAILED)


@dataclass(frozen=True)
class LiveSelection:
    """The live runs to replay: every run of each named case, and a sample of ``sample`` runs (0: none)."""

    case_ids: list[str]
    sample: int
    query: str | None


async def _replay(
    files: list[Path], live: LiveSelection, jobs: int, sandbox: bool, as_json: bool, quiet: bool
) -> tuple[int, int]:
    from approvals.audit.live import fetch_runs, sampled_runs
    from approvals.audit.replay import HistorySource, ReplayVerdict, replay, replay_parallel

    total = failed = 0

    def report(verdict: ReplayVerdict) -> None:
        nonlocal total, failed
        total += 1
        failed += not verdict.ok
        if as_json:
            typer.echo(verdict.model_dump_json())
        elif not verdict.ok:
            where = f" at history event {verdict.event_id}" if verdict.event_id else ""
            console.print(
                f"[red]✘[/red] {verdict.source}{where}: {verdict.error_type}: {verdict.message}", highlight=False
            )
        elif not quiet:
            console.print(f"[green]✔[/green] {verdict.source} ({verdict.history_events} events)", highlight=False)

    if files and jobs > 1:
        loop = asyncio.get_running_loop()
        verdicts = await loop.run_in_executor(None, lambda: list(replay_parallel(files, jobs=jobs, sandbox=sandbox)))
        for verdict in verdicts:
            report(verdict)
    elif files:
        async for verdict in replay(files, sandbox=sandbox):
            report(verdict)
    if live.sample:
        async with _services(database=False) as (client, _):
            assert client is not None
            async for verdict in replay(sampled_runs(client, live.sample, live.query), sandbox=sandbox):
                report(verdict)
    if live.case_ids:
        async with _services() as (client, pool):
            assert client is not None

            async def fetched() -> AsyncIterator[HistorySource]:
                for case_id in live.case_ids:
                    runs = await fetch_runs(client, case_id, pool)  # every run; the archive's once Temporal's are gone
                    for number, (history, source) in enumerate(runs.runs(), start=1):
                        suffix = f" (run {number} of {len(runs)})" if len(runs) > 1 else ""
                        archived = ", archived history" if source == "archive" else ""
                        yield (f"case {case_id}{suffix}{archived}", history)

            async for verdict in replay(fetched(), sandbox=sandbox):
                report(verdict)
    return total, failed


# ------------------------------------------------------------------ verify


@app.command()
def verify(
    sources: Annotated[list[str], typer.Argument(help="Case ids, bundle directories, or export directories.")],
    as_json: Annotated[bool, typer.Option("--json", help="The reports as JSON.")] = False,
    public_keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="PEM public key trusted for bundle signatures and checkpoints (repeatable; default "
            "AUDIT_PUBLIC_KEY_PATH).",
        ),
    ] = None,
) -> None:
    """Recompute the hash chain and cross-check the audit log against the Temporal history; for a bundle,
    also check the manifest's signature and the proof that its last event is sealed in a signed checkpoint,
    and name the key that signed; exit 3 on findings."""
    reports = _run(_verify(sources, list(public_keys or [])))
    if as_json:
        _print_json([report.model_dump(mode="json") for report in reports])
    else:
        for report in reports:
            _print_report(report)
        if len(reports) > 1:
            intact = sum(report.ok for report in reports)
            colour = "green" if intact == len(reports) else "red"
            console.print(f"[{colour}]{intact} of {len(reports)} cases intact[/{colour}]")
    if not all(report.ok for report in reports):
        raise typer.Exit(AUDIT_FAILED)


async def _verify(sources: list[str], public_keys: list[Path]) -> list[VerifyReport]:
    from activities.signing import load_certificate
    from approvals.audit.bundle import load_bundle, verify_bundle
    from approvals.audit.live import verify_case
    from approvals.settings import load_settings
    from approvals.storage import queries

    bundles: list[Path] = []
    live: list[str] = []
    for source in sources:
        path = Path(source)
        if _is_bundle(source):
            bundles.append(path)
        elif path.is_dir():  # an export directory: every bundle in it
            bundles += sorted(
                manifest.parent for manifest in path.rglob("manifest.json") if _is_bundle(str(manifest.parent))
            )
        else:
            live.append(source)
    trusted = _trusted_keys(public_keys) if bundles else []
    fetching = _attachment_fetching()
    reports: list[VerifyReport] = [
        await _with_attachments(verify_bundle(path, trusted), load_bundle(path).events, fetching) for path in bundles
    ]
    if live:
        settings = load_settings()
        organ = load_certificate(settings.document_signing_certificate_path, settings.document_signing_passphrase)
        async with _services() as (client, pool):
            assert client is not None and pool is not None
            for case_id in live:
                report = await verify_case(client, pool, case_id, organ)  # every run, archived ones too
                reports.append(await _with_attachments(report, await queries.case_events(pool, case_id), fetching))
    return reports


def _attachment_fetching() -> AttachmentFetching:
    from approvals.audit.attachments import AttachmentFetching
    from approvals.settings import load_settings

    settings = load_settings()
    return AttachmentFetching(settings.attachment_fetch_hosts, settings.webhook_destinations())


async def _with_attachments(
    report: VerifyReport, events: Sequence[DomainEvent], fetching: AttachmentFetching
) -> VerifyReport:
    """The report with a finding for every referenced document that can be fetched and changed."""
    from approvals.audit.attachments import attachment_findings

    found = await attachment_findings(events, fetching)
    if not found:
        return report
    findings = sorted([*report.findings, *found], key=lambda f: (f.seq or 0, f.kind.value))
    return report.model_copy(update={"findings": findings})


_HISTORY_SOURCES = {
    "archive": "archived history (Temporal no longer has it)",
    "archive and temporal": "Temporal history and the archived one of runs Temporal no longer has",
}


def _print_report(report: VerifyReport) -> None:
    from approvals.audit.bundle import BundleReport

    if report.ok:
        runs = f" of {len(report.run_ids)} runs" if len(report.run_ids) > 1 else ""
        console.print(
            f"[green]✔ {report.case_id}[/green]: {report.events} events, chain intact, "
            f"matches the {_HISTORY_SOURCES.get(report.history_source or '', 'Temporal history')}{runs} "
            f"({report.history_events} events); last hash {report.last_hash}",
            highlight=False,
        )
        if isinstance(report, BundleReport):
            console.print(
                f"  signed by key {report.signed_by}; last event sealed in checkpoint {report.sealed_in}",
                highlight=False,
            )
    else:
        console.print(f"[red]✘ {report.case_id}[/red]: {report.events} events", highlight=False)
    for finding in report.findings:
        colour = "red" if finding.severity.value == "error" else "yellow"
        seq = f"seq {finding.seq}" if finding.seq is not None else "bundle"
        console.print(f"  [{colour}]{seq:>8}  {finding.kind.value:<22}[/{colour}] {finding.message}", highlight=False)


# ------------------------------------------------------------------ checkpoint


@app.command()
def checkpoint(as_json: Annotated[bool, typer.Option("--json", help="The checkpoint as JSON.")] = False) -> None:
    """Seal a checkpoint now (admin): a Merkle root over every case's latest audit event, linked to the
    previous checkpoint and signed with AUDIT_SIGNING_KEY_PATH. Workers seal one every
    AUDIT_CHECKPOINT_INTERVAL_SECONDS; nothing is written when no case changed since the last. A case whose
    log no longer holds what was sealed before keeps its old leaf: it is named, and the exit status is 3."""
    from approvals.audit.sealing import checkpoint_summary

    signed, diverged = _run(_seal(_signing_key()))
    for case_id, why in diverged.items():
        errors.print(f"[red]✘ {case_id}[/red]: {why}", highlight=False)
    if signed is None:
        console.print("no case changed since the last checkpoint: nothing sealed")
    elif as_json:
        _print_json(checkpoint_summary(signed))
    else:
        summary = checkpoint_summary(signed)
        console.print(
            f"sealed checkpoint {summary['seq']} over {summary['tree_size']} cases: root {summary['root']}, "
            f"hash {summary['hash']}, signed by key {summary['key_id']}",
            highlight=False,
        )
    if diverged:
        raise typer.Exit(AUDIT_FAILED)


async def _seal(key: Ed25519PrivateKey) -> tuple[Any, dict[str, str]]:
    from approvals.audit.sealing import Notary

    async with _services(temporal=False) as (_, pool):
        assert pool is not None
        notary = Notary(pool, key)
        return await notary.seal(), notary.diverged


# ------------------------------------------------------------------ archive and rebuild


@app.command()
def archive(
    cases: Annotated[
        list[str] | None, typer.Argument(help="Archive the closed runs of these cases (any task queue) only.")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Look at every closed run, not only those closed since the last pass.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The pass as JSON.")] = False,
) -> None:
    """Copy the Temporal histories of TEMPORAL_TASK_QUEUE's closed runs (continued as new included) into
    PostgreSQL, with their SHA-256, as each worker does every HISTORY_ARCHIVE_INTERVAL_SECONDS; verify,
    export and replay read them there once Temporal's retention deleted them. Idempotent."""
    if cases:
        archived = _run(_archive_cases(cases))
        console.print(f"{archived} closed run(s) of {len(cases)} case(s) archived now")
        return
    result = _run(_archive(everything))
    if as_json:
        _print_json(result.model_dump(mode="json"))
    else:
        failed = f", [red]{result.failed} not fetched[/red]" if result.failed else ""
        console.print(
            f"{result.listed} closed run(s) of task queue {result.task_queue}: {result.archived} archived now, "
            f"{result.already} archived before{failed}",
            highlight=False,
        )
    if result.failed:
        raise typer.Exit(1)


@asynccontextmanager
async def _archiver() -> AsyncIterator[Any]:
    from approvals.audit.archiver import HistoryArchiver
    from approvals.settings import load_settings

    async with _services() as (client, pool):
        assert client is not None and pool is not None
        yield HistoryArchiver(client, pool, load_settings().temporal_task_queue)


async def _archive(everything: bool) -> Any:
    async with _archiver() as archiver:
        return await archiver.archive_pass(everything=everything)


async def _archive_cases(case_ids: list[str]) -> int:
    from approvals.audit.archiver import archive_case

    async with _archiver() as archiver:
        return sum([await archive_case(archiver.client, archiver.pool, case_id) for case_id in case_ids])


@app.command()
def rebuild(
    cases: Annotated[list[str] | None, typer.Argument(help="Case (workflow) ids to rebuild.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Also every case of TEMPORAL_TASK_QUEUE running or closed since this time (the backup's; ISO "
            "8601, without an offset UTC+8 local time), from Temporal's visibility.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The reports as JSON.")] = False,
) -> None:
    """After PostgreSQL was restored from an older backup: record again the events, projections and
    notifications the histories (Temporal's, or the archive's) hold and the database lost, through the same
    recording code as the worker. Idempotent; `approvals audit verify` confirms the result. A case whose log
    holds other events under the same seqs is left alone (exit 3)."""
    if not cases and since is None:
        raise _fail("name case ids, or select the cases changed since the backup with --since", 2)
    reports = _run(_rebuild(list(cases or []), _moment("--since", since) if since else None))
    if as_json:
        _print_json([report.model_dump(mode="json") for report in reports])
    for report in reports:
        if as_json:
            break
        if report.conflict:
            console.print(f"[red]✘ {report.case_id}[/red]: {report.conflict}", highlight=False)
            continue
        restored = f"restored seq {', '.join(map(str, report.restored))}" if report.restored else "nothing missing"
        console.print(
            f"[green]✔ {report.case_id}[/green]: {restored}; log ends at seq {report.last_seq} "
            f"({report.batches} recordings from the {report.history_source} history)",
            highlight=False,
        )
    if any(report.conflict for report in reports):
        raise typer.Exit(AUDIT_FAILED)


async def _rebuild(case_ids: list[str], since: datetime | None) -> list[Any]:
    from approvals.audit.rebuild import changed_since, rebuild_case
    from approvals.settings import load_settings

    async with _services() as (client, pool):
        assert client is not None and pool is not None
        if since is not None:
            case_ids += await changed_since(client, load_settings().temporal_task_queue, since)
        return [await rebuild_case(client, pool, case_id) for case_id in dict.fromkeys(case_ids)]


# ------------------------------------------------------------------ timeline


@app.command()
def timeline(
    source: Annotated[str, typer.Argument(help="Case id or bundle directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="The rows as JSON.")] = False,
    lang: Annotated[Lang, typer.Option("--lang", help="zh (中文) or en.")] = "zh",
) -> None:
    """What happened, in plain language (Chinese; `--lang en`): who, when (UTC+8), role, legal basis, comment,
    stage times, clock stops (`--json`: every event's data too, and the wording in both languages)."""
    from approvals.audit.timeline import timeline as build_timeline

    rows = build_timeline(_run(_events_of(source)))
    if as_json:
        _print_json([row.model_dump(mode="json") for row in rows])
        return
    console.print(timeline_table(rows, source, lang))


# ------------------------------------------------------------------ state at a point in time


@app.command()
def state(
    source: Annotated[str, typer.Argument(help="Case id or bundle directory.")],
    seq: Annotated[int | None, typer.Option("--seq", min=1, help="As of this event number (inclusive).")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="As of this time, ISO 8601; without an offset it is UTC+8 local time.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The state as JSON.")] = False,
) -> None:
    """The case as it stood after event N or at a moment: status, open tasks, stage results, clocks."""
    from approvals.audit.state import state_at
    from approvals.event_wording import local, local_due

    if seq is not None and at is not None:
        raise _fail("give --seq or --at, not both", 2)
    moment = _moment("--at", at) if at is not None else None
    result = state_at(_run(_events_of(source)), seq=seq, at=moment)
    if as_json:
        _print_json(result.model_dump(mode="json"))
        return
    when = local(result.as_of) if result.as_of else "-"
    console.print(f"[bold]{result.case_id}[/bold] as of seq {result.as_of_seq} ({when})", highlight=False)
    console.print(
        f"  status: [bold]{result.status}[/bold]   outcome: {result.outcome or '-'}   clock: {result.clock_state}"
    )
    console.print(f"  current stages: {', '.join(result.current_stages) or '-'}")
    for key, due in result.clocks.items():
        console.print(f"  clock {key}: due {local_due(due)}")
    if result.pending_supplement:
        console.print(f"  waiting for material (补正): {'; '.join(result.pending_supplement)}")
    table = Table(title="tasks", expand=True)
    for column in ("task", "status", "holder", "decision", "comment"):
        table.add_column(column, overflow="fold")
    for task in result.tasks:
        holder = task.delegate_id or task.claimed_by or task.assignee_id or ", ".join(task.candidate_roles)
        table.add_row(task.task_id, task.status, holder, task.decision or "", task.comment)
    console.print(table)
    for stage_result in result.stage_results:
        console.print(f"  stage {stage_result.stage_id}: {stage_result.outcome} (round {stage_result.round})")
