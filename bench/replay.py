"""Replay throughput: ``approvals audit replay`` against a plain single-process sandboxed ``Replayer``.

    .venv/bin/python bench/replay.py                      # 1,000 histories
    .venv/bin/python bench/replay.py --histories 2000 --json replay.json
    .venv/bin/python bench/replay.py --quick              # 24 histories, smoke run (what the test runs)

**The histories.** Clones of the real recorded histories in ``tests/histories/`` (every ``*.json`` there and
in its sub-directories: one recorded run of every process and five kernel runs, and the recordings of
earlier workflow versions kept beside them), written to a temporary directory that is deleted at the end.
Clone *i* of a history gets its own workflow id (the business key gains a ``-b<i>`` suffix, everywhere it
occurs: the start event and inside every payload) and its own run id, so no two of the N histories share
an id. For variety, every other clone is cut short where a real export of a case still running would end
(after a completed workflow task and the commands it recorded, at a point chosen per clone), so the set
mixes finished cases with cases at every stage. The hashes sealed in the recorded ``record_events``
batches still hash the original ids: that is not what replay looks at (every clone must replay cleanly,
which each run checks), but ``approvals audit verify`` would rightly flag the clones. The output states
how many real histories were cloned and how many events the set holds.

**What is measured**, in the same run, on the same files:

- **baseline**: one process, ``temporalio.worker.Replayer(workflows=WORKFLOWS,
  data_converter=pydantic_data_converter)`` -- the SDK's default ``SandboxedWorkflowRunner`` -- and
  ``replay_workflows`` over an async iterator that reads and parses one file at a time
  (``approvals.audit.history.history_from_json``). It runs in a fresh child process; the time counted is the
  replay loop alone (reading and parsing included, interpreter start and imports excluded, which favours
  the baseline).
- **cli**: the real command, ``.venv/bin/approvals audit replay <dir> --json``, as a subprocess with its
  defaults; the time counted is the wall time of the whole command (interpreter start, imports, worker
  processes, reading, replaying, printing one JSON verdict per history).
- **cli --sandbox**: the same command forced to replay in the workflow sandbox (what the worker runs);
  not run by ``--quick``.

``approvals audit replay`` replays in one process per CPU (one per 40 files at most), one ``Replayer`` per
process, and without the workflow sandbox unless ``--sandbox`` is given: why that proves the same about
non-determinism is argued at ``approvals.audit.replay.SANDBOX_FOR_AUDIT``.

**Cache miss.** Besides, in a fresh child process: the CPU time (``time.process_time``, every thread of the
process) of replaying one recorded project-approval case (``tests/histories/project-approval-full.json``)
with the worker's workflows, data converter (``schemas.converter``) and workflow runner
(``workflows.catalog.workflow_runner()``), one
replay at a time after a warm-up replay: what a worker spends on a case that is not in its cache when its
next step arrives. Target (issue 15): median <= 70 ms. The same in the sandbox (how CI replays) is printed
beside it for reference.

Every variant must replay every history cleanly (the verdicts are counted); a failure is printed and the
benchmark exits 1. Figures: histories/s and events/s of each, and each one's ratio to the baseline. Nothing
is asserted on timings. ``--json PATH`` writes the figures and the machine (CPU count, load average,
Python, temporalio version).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "tests" / "histories"
APPROVALS = Path(sys.executable).with_name("approvals")
RESULT_PREFIX = "REPLAY-BASELINE "
QUICK_HISTORIES = 24
CACHE_MISS_HISTORY = RECORDED / "project-approval-full.json"
CACHE_MISS_RUNS = 20
TARGET_CACHE_MISS_CPU_MS = 70.0
JSON_ENCODING = base64.b64encode(b"json/plain").decode()

# ---------------------------------------------------------------------------------------------- histories


@dataclass
class Corpus:
    directory: str
    histories: int
    events: int
    recorded: list[dict[str, Any]]
    """The real histories cloned: name, workflow type, events."""
    full: int
    truncated: int


def _rewrite(value: Any, swap: dict[str, str]) -> Any:
    """``value`` with every id in ``swap`` replaced, inside base64 JSON payloads too."""
    if isinstance(value, str):
        for old, new in swap.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_rewrite(item, swap) for item in value]
    if isinstance(value, dict):
        if "data" in value and value.get("metadata", {}).get("encoding") == JSON_ENCODING:
            data = base64.b64decode(value["data"]).decode()
            for old, new in swap.items():
                data = data.replace(old, new)
            return {
                **value,
                "metadata": _rewrite(value["metadata"], swap),
                "data": base64.b64encode(data.encode()).decode(),
            }
        return {key: _rewrite(item, swap) for key, item in value.items()}
    return value


def _cut_points(events: list[dict[str, Any]]) -> list[int]:
    """Lengths at which a running case's export could end: after a completed workflow task and its commands.

    The events a workflow task's commands recorded name that task (``workflowTaskCompletedEventId``); the
    cut falls after the last of them, before anything the server recorded later. The last point is the full
    history and is left out.
    """
    points: list[int] = []
    for index, event in enumerate(events):
        if event["eventType"] != "EVENT_TYPE_WORKFLOW_TASK_COMPLETED":
            continue
        completed = event["eventId"]
        end = index + 1
        while end < len(events) and _recorded_by(events[end]) == completed:
            end += 1
        if end < len(events) and end > 4:
            points.append(end)
    return points


def _recorded_by(event: dict[str, Any]) -> str | int | None:
    for key, attributes in event.items():
        if key.endswith("EventAttributes") and isinstance(attributes, dict):
            return attributes.get("workflowTaskCompletedEventId")
    return None


def _business_key(started: dict[str, Any]) -> str:
    """The case's business key, from its input (a CaseInput): the time-skipping server records no workflow id."""
    case = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    return str(case["business_key"])


def prepare(count: int, directory: Path, *, seed: int = 7) -> Corpus:
    """Writes ``count`` histories to ``directory``: clones of the recorded ones, half of them cut short."""
    rng = random.Random(seed)
    sources = []
    for path in sorted(RECORDED.rglob("*.json")):
        history = json.loads(path.read_text(encoding="utf-8"))
        started = history["events"][0]["workflowExecutionStartedEventAttributes"]
        business_key = _business_key(started)
        sources.append(
            {
                "name": str(path.relative_to(RECORDED).with_suffix("")),
                "workflow_type": started["workflowType"]["name"],
                "events": len(history["events"]),
                "history": history,
                "business_key": business_key,
                "run_id": started.get("originalExecutionRunId"),  # none in a run continued as new
                "cuts": _cut_points(history["events"]),
            }
        )
    if not sources:
        raise SystemExit(f"no recorded histories in {RECORDED}")
    directory.mkdir(parents=True, exist_ok=True)
    events = truncated = 0
    for index in range(count):
        source = sources[index % len(sources)]
        swap = {source["business_key"]: f"{source['business_key']}-b{index:05d}"}
        if source["run_id"]:
            swap[source["run_id"]] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        clone = _rewrite(source["history"], swap)
        if index % 2 and source["cuts"]:
            clone["events"] = clone["events"][: rng.choice(source["cuts"])]
            truncated += 1
        events += len(clone["events"])
        name = f"{index:05d}-{source['name'].replace('/', '--')}.json"
        (directory / name).write_text(json.dumps(clone), encoding="utf-8")
    return Corpus(
        directory=str(directory),
        histories=count,
        events=events,
        recorded=[{k: s[k] for k in ("name", "workflow_type", "events")} for s in sources],
        full=count - truncated,
        truncated=truncated,
    )


# ---------------------------------------------------------------------------------------------- variants


@dataclass
class Figure:
    name: str
    description: str
    seconds: float
    histories: int
    events: int
    failed: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def histories_per_second(self) -> float:
        return self.histories / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def baseline_child(directory: Path) -> None:
    """Runs in a fresh process: the straightforward replay, timed from the first file read to the last result."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from approvals.audit.history import history_from_json
    from workflows.catalog import WORKFLOWS

    files = sorted(directory.glob("*.json"))
    counted = {"histories": 0, "events": 0}

    async def histories():  # noqa: ANN202 - an async generator of WorkflowHistory
        for path in files:
            history = history_from_json(path.read_text(encoding="utf-8"))
            counted["histories"] += 1
            counted["events"] += len(history.events)
            yield history

    async def run() -> int:
        replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
        results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
        return len(results.replay_failures)

    started = time.perf_counter()
    failed = asyncio.run(run())
    seconds = time.perf_counter() - started
    print(RESULT_PREFIX + json.dumps({"seconds": seconds, "failed": failed, **counted}), flush=True)


def measure_baseline(corpus: Corpus) -> Figure:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, __file__, "--baseline-child", corpus.directory],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if run.returncode != 0 or not lines:
        raise SystemExit(f"baseline failed (exit {run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return Figure(
        name="baseline",
        description="Replayer, default sandbox, 1 process (replay loop only)",
        seconds=result["seconds"],
        histories=result["histories"],
        events=result["events"],
        failed=result["failed"],
        extra={"process_wall_seconds": wall},
    )


def measure_cli(corpus: Corpus, name: str, options: list[str]) -> Figure:
    command = [str(APPROVALS), "audit", "replay", corpus.directory, "--json", *options]
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    verdicts = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    failed = [v for v in verdicts if not v["ok"]]
    if run.returncode not in (0, 3) or not verdicts:
        raise SystemExit(f"{' '.join(command)} failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    for verdict in failed[:5]:
        print(f"  {name}: {verdict['source']}: {verdict['error_type']}: {verdict['message']}", file=sys.stderr)
    return Figure(
        name=name,
        description="approvals audit replay " + " ".join(["<dir>", "--json", *options]) + " (whole command)",
        seconds=seconds,
        histories=len(verdicts),
        events=sum(v["history_events"] for v in verdicts),
        failed=len(failed),
        extra={"command": " ".join(command)},
    )


def cache_miss_child(runs: int) -> None:
    """Runs in a fresh process: CPU ms per replay of one project-approval case, as the worker replays it."""
    import statistics

    from temporalio.worker import Replayer

    from approvals.audit.history import history_from_json
    from schemas.converter import data_converter
    from workflows.catalog import WORKFLOWS, workflow_runner

    history = history_from_json(CACHE_MISS_HISTORY.read_text(encoding="utf-8"))
    result: dict[str, Any] = {"history": CACHE_MISS_HISTORY.name, "events": len(history.events), "runs": runs}
    for name, runner in (("worker_runner", workflow_runner()), ("sandboxed", workflow_runner(sandboxed=True))):
        replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter, workflow_runner=runner)

        async def replay_once(replayer: Any = replayer) -> float:
            began = time.process_time()
            await replayer.replay_workflow(history)
            return (time.process_time() - began) * 1000

        async def measure(replay_once: Any = replay_once) -> list[float]:
            await replay_once()  # warm-up: the first replay imports what the workflows import
            return [await replay_once() for _ in range(runs)]

        samples = asyncio.run(measure())
        result[name] = {"cpu_ms_median": round(statistics.median(samples), 1), "cpu_ms_min": round(min(samples), 1)}
    result["target_cpu_ms"] = TARGET_CACHE_MISS_CPU_MS
    result["meets_target"] = result["worker_runner"]["cpu_ms_median"] <= TARGET_CACHE_MISS_CPU_MS
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def measure_cache_miss(runs: int) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, __file__, "--cache-miss-child", str(runs)], capture_output=True, text=True, cwd=ROOT
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if run.returncode != 0 or not lines:
        raise SystemExit(f"cache-miss replay failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "temporalio": metadata.version("temporalio"),
    }


def report(corpus: Corpus, figures: list[Figure]) -> None:
    sources = ", ".join(f"{r['name']} {r['events']}" for r in corpus.recorded)
    print(
        f"histories: {corpus.histories} clones of {len(corpus.recorded)} real recorded histories "
        f"(tests/histories: {sources} events); "
        f"{corpus.full} complete, {corpus.truncated} cut short as a running case's export; "
        f"{corpus.events} events in all"
    )
    base = figures[0]
    print(
        f"{'variant':<16}{'histories':>10}{'events':>9}{'failed':>8}{'seconds':>9}{'hist/s':>9}{'events/s':>10}"
        f"{'vs baseline':>13}"
    )
    for figure in figures:
        ratio = figure.histories_per_second / base.histories_per_second if base.histories_per_second else 0.0
        print(
            f"{figure.name:<16}{figure.histories:>10}{figure.events:>9}{figure.failed:>8}{figure.seconds:>9.2f}"
            f"{figure.histories_per_second:>9.1f}{figure.events_per_second:>10.0f}{ratio:>12.2f}x"
        )
    for figure in figures:
        print(f"  {figure.name}: {figure.description}")


def report_cache_miss(miss: dict[str, Any]) -> None:
    worker, sandboxed = miss["worker_runner"], miss["sandboxed"]
    print(
        f"cache-miss replay of {miss['history']} ({miss['events']} events), CPU per replay over {miss['runs']} runs: "
        f"the worker's runner median {worker['cpu_ms_median']} ms (min {worker['cpu_ms_min']}), in the sandbox "
        f"{sandboxed['cpu_ms_median']} ms (min {sandboxed['cpu_ms_min']})"
    )
    print(
        f"TARGET cache-miss replay of one project-approval case <= {miss['target_cpu_ms']:g} ms CPU: "
        f"{worker['cpu_ms_median']} ms: {'meets' if miss['meets_target'] else 'MISSES'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--histories", type=int, default=1000, help="how many histories (default 1000)")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: {QUICK_HISTORIES} histories, no `cli --sandbox` variant"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--no-sandbox-variant", action="store_true", help="skip the `cli --sandbox` variant")
    parser.add_argument("--baseline-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache-miss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_child:
        baseline_child(args.baseline_child)
        return 0
    if args.cache_miss_child:
        cache_miss_child(args.cache_miss_child)
        return 0
    count = QUICK_HISTORIES if args.quick else args.histories
    load_before = machine()["load_average"]
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        corpus = prepare(count, Path(tmp) / "histories")
        figures = [measure_baseline(corpus), measure_cli(corpus, "cli", [])]
        if not (args.no_sandbox_variant or args.quick):
            figures.append(measure_cli(corpus, "cli --sandbox", ["--sandbox"]))
        corpus.directory = "<temporary directory, deleted>"
    cache_miss = measure_cache_miss(5 if args.quick else CACHE_MISS_RUNS)
    report(corpus, figures)
    report_cache_miss(cache_miss)
    described = machine()
    described["load_average_before"] = load_before
    print(
        f"machine: {described['cpu_count']} CPUs, Python {described['python']}, temporalio {described['temporalio']}, "
        f"load average {load_before} before, {described['load_average']} after"
    )
    if args.json:
        base = figures[0]
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "replay",
                    "machine": described,
                    "corpus": asdict(corpus),
                    "cache_miss": cache_miss,
                    "figures": [
                        {
                            **asdict(figure),
                            "histories_per_second": figure.histories_per_second,
                            "events_per_second": figure.events_per_second,
                            "ratio_to_baseline": (
                                figure.histories_per_second / base.histories_per_second
                                if base.histories_per_second
                                else 0.0
                            ),
                        }
                        for figure in figures
                    ],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        print(f"figures written to {args.json}")
    return 1 if any(figure.failed for figure in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
