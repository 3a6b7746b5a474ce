"""How the timeline words an event, in English and in Chinese, and the wording of the events no operation causes.

An operation's events are worded in its registry entry (``approvals.operations``, field ``wording``); the
events the workflows record on their own (a stage opens, a clock runs out, a decision is published …) are
worded in :data:`SYSTEM_WORDING`. Together they word every :class:`~schemas.events.EventType` once, in both
languages (a test holds them to it). A wording is a template over the event's payload, ``who`` (the actor's
name), ``stage_title`` and ``stage``, or a small function of the event and a :class:`WordingContext` (stage
titles, local times) when a template cannot say it. A value the event does not record is left out of the
sentence (:func:`part`) or said in words (:func:`said`, :data:`NOT_STATED`), never printed as ``None``.
The Chinese uses the terms of government approval work
(签收, 转办, 委托, 加签, 催办, 抄送, 补正, 撤回, 退回, 会签, 或签, 审批, 延期, 法定期限, 工作日).

This module imports only ``schemas``: the timeline reads it without loading any workflow code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from schemas.events import DomainEvent, EventType
from schemas.process import EXCLUDED_PERIOD_NAMES

ZONE = "UTC+8"
CHINA_TIME = timezone(timedelta(hours=8), ZONE)
"""Auditors read times in the zone's local time (China has no daylight saving)."""

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

NOT_STATED: Mapping[Lang, str] = {"en": "(not stated)", "zh": "（未注明）"}
"""What a wording says where the event does not record a value it would name."""


def _zoned(text: str, lang: Lang, labelled: bool) -> str:
    """A local time said with its zone (``2026-03-02 10:00:00 UTC+8``, ``北京时间2026-03-02 10:00:00``), or bare
    for a column whose header names the zone."""
    if not labelled:
        return text
    return f"北京时间{text}" if lang == "zh" else f"{text} {ZONE}"


def local(at: datetime, lang: Lang = "en", *, labelled: bool = True) -> str:
    """``at`` in the zone's local time, to the second."""
    return _zoned(at.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"), lang, labelled)


def local_due(at: datetime, lang: Lang = "en", *, labelled: bool = True) -> str:
    """A working-day deadline ends at local midnight: say "end of <day>" rather than "<next day> 00:00"."""
    moment = at.astimezone(CHINA_TIME)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        day = (moment - timedelta(days=1)).strftime("%Y-%m-%d")
        return _zoned(f"{day} 24时" if lang == "zh" else f"end of {day}", lang, labelled)
    return local(moment, lang, labelled=labelled)


def duration(delta: timedelta, lang: Lang = "en") -> str:
    """``1d 2h 5m`` (``1天2小时5分钟``): days, hours and minutes, the zero ones left out."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    units = ("天", "小时", "分钟") if lang == "zh" else ("d", "h", "m")
    parts = [
        f"{days}{units[0]}" if days else "",
        f"{hours}{units[1]}" if hours else "",
        f"{minutes}{units[2]}" if minutes or not (days or hours) else "",
    ]
    return ("" if lang == "zh" else " ").join(part for part in parts if part)


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


ZH_TERMS = {
    "approve": "同意",
    "approved": "同意",
    "reject": "不同意",
    "rejected": "不同意",
    "approve_with_conditions": "附条件同意",
    "approved_with_conditions": "附条件同意",
    "return": "退回",
    "returned": "退回",
    "abstain": "弃权",
    "absent": "缺席",
    "required": "通过所需",
    "no_quorum": "未达法定人数",
    "abandoned": "中止",
    "withdrawn": "撤回",
    "cancelled": "已取消",
    "in_review": "审查中",
    "awaiting_supplement": "待补正",
    "under_supervision": "监督中",
    "single": "单人审批",
    "all": "会签",
    "any": "或签",
    "sequential": "依次审批",
    "quorum": "集体审议表决",
    "before": "前加签",
    "after": "后加签",
    "exemption": "免责",
    "reduced_liability": "减轻责任",
    "not_applicable": "不予容错",
    "not_accepted": "不予受理",
    **EXCLUDED_PERIOD_NAMES,
    "person_concerned": "当事人",
    "close_relative": "近亲属关系",
    "interest": "利害关系",
    "other": "其他可能影响公正的关系",
}
"""Decisions, outcomes, statuses, routing modes and determinations, in the office's words."""


def term(value: Any, lang: Lang) -> str:
    """A decision, outcome or status as people say it: ``approve_with_conditions`` -> ``approve with
    conditions`` / ``附条件同意``."""
    text = str(value if value is not None else "")
    return ZH_TERMS.get(text, text.replace("_", " ")) if lang == "zh" else text.replace("_", " ")


def listed(values: Iterable[Any] | None, lang: Lang, separator: str = ", ") -> str:
    return ("、" if lang == "zh" else separator).join(str(value) for value in values or [] if value not in (None, ""))


def said(value: Any, lang: Lang) -> str:
    """A value the sentence cannot do without, or :data:`NOT_STATED` where the event does not record it."""
    return NOT_STATED[lang] if value is None or value == "" else str(value)


def part(template: str, value: Any) -> str:
    """A part of a sentence that can be left out: ``template`` with ``value`` in it (``part(" for {}",
    applicant)``), or nothing where the event does not record the value."""
    return template.format(value) if value is not None and value != "" else ""


@dataclass(frozen=True)
class WordingContext:
    """What a wording may need beyond the event: the case's stages (from ``case.started``), by id."""

    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def stage_title(self, event: DomainEvent) -> str | None:
        return self.stages.get(event.stage_id or "", {}).get("title") or event.stage_id

    def stage(self, event: DomainEvent, lang: Lang) -> str:
        """``stage “<title>”`` (``环节“<title>”``), or an unnamed stage where the event names none."""
        title = self.stage_title(event)
        if lang == "zh":
            return f"环节“{title}”" if title else "未注明的环节"
        return f"stage “{title}”" if title else "an unnamed stage"

    def clock_name(self, key: str | None, lang: Lang) -> str:
        """``stage:<id>:<round>`` -> the stage's title; ``case`` -> the statutory period."""
        if key == "case":
            return "法定期限" if lang == "zh" else "the statutory period"
        parts = (key or "").split(":")
        if len(parts) == 3 and parts[0] == "stage":
            title = self.stages.get(parts[1], {}).get("title") or parts[1]
            if lang == "zh":
                return f"环节“{title}”" + (f"（第{parts[2]}轮）" if parts[2] != "1" else "") + "的办理期限"
            return f"stage “{title}”" + (f" (round {parts[2]})" if parts[2] != "1" else "")
        if key:
            return key
        return "未注明的期限" if lang == "zh" else "an unnamed deadline"


Describer = Callable[[DomainEvent, WordingContext, Lang], str]
"""Words an event in the language asked for, when a template cannot."""


class _Fields(dict[str, Any]):
    """A template's fields: the payload, ``who``, ``stage_title`` and ``stage`` (``stage “<title>”``); one the
    event does not record (missing, or recorded as null) reads :data:`NOT_STATED`."""

    def __init__(self, lang: Lang, fields: Mapping[str, Any]) -> None:
        super().__init__({key: said(value, lang) for key, value in fields.items()})
        self.lang = lang

    def __missing__(self, key: str) -> str:
        return NOT_STATED[self.lang]


def who(event: DomainEvent) -> str:
    return event.actor.name or event.actor.id


@dataclass(frozen=True)
class Wording:
    """An event type in plain language: an English and a Chinese ``str.format`` template over the payload,
    ``who``, ``stage_title`` and ``stage`` (``Wording(en, zh)``), or one :data:`Describer` for both
    (``Wording.of(fn)``). Times in a wording are local and labelled (:func:`local`, :func:`local_due`).
    ``comment``: the row shows the event's comment (or text, or reason) under the action."""

    en: str = ""
    zh: str = ""
    comment: bool = False
    describer: Describer | None = None

    def __post_init__(self) -> None:
        if self.describer is None and not (self.en and self.zh):
            raise ValueError("a wording needs an English and a Chinese template, or a describer")

    @classmethod
    def of(cls, describer: Describer, *, comment: bool = False) -> Wording:
        return cls(comment=comment, describer=describer)

    def describe(self, event: DomainEvent, context: WordingContext, lang: Lang) -> str:
        if self.describer is not None:
            return self.describer(event, context, lang)
        template = self.zh if lang == "zh" else self.en
        stage = {"stage_title": context.stage_title(event), "stage": context.stage(event, lang)}
        fields = {**event.payload, "who": who(event), **stage}
        return template.format_map(_Fields(lang, fields))


def _due(event: DomainEvent, lang: Lang, key: str = "due_at") -> str | None:
    due = parse_time(event.payload.get(key))
    return local_due(due, lang) if due else None


def _case_started(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload
    applicant = (p.get("applicant") or {}).get("name") or (p.get("applicant") or {}).get("id")
    parent, title, key = (p.get("data") or {}).get("parent_case_id"), p.get("title"), p.get("business_key")
    if lang == "zh":
        case = (f"办件“{title}”" if title else "未注明名称的办件") + part("（{}）", key)
        return f"{who(event)}{part('为{}', applicant)}发起{case}{part('，为{}的子办件', parent)}"
    case = (f"case “{title}”" if title else "an untitled case") + part(" ({})", key)
    return f"{who(event)} started {case}{part(' for {}', applicant)}{part(', a child case of {}', parent)}"


def _stage_started(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, due, stage = event.payload, _due(event, lang), context.stage(event, lang)
    mode = term(p.get("mode"), lang)
    if lang == "zh":
        details = "，".join(text for text in (part("第{}轮", p.get("round")), mode) if text)
        return f"{stage}开始办理{part('（{}）', details)}{part('，办理期限至{}', due)}"
    details = ", ".join(text for text in (part("round {}", p.get("round")), mode) if text)
    return f"{stage} opened{part(' ({})', details)}{part(', due {}', due)}"


def _task_created(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, by_system = event.payload, event.actor.id == "system"
    roles = [role for role in p.get("candidate_roles") or [] if role]
    if lang == "zh":
        target = p.get("assignee_id") or (f"角色{listed(roles, lang)}的任一人员" if roles else "未注明的办理人")
        waits = part("（待{}办理后）", p.get("waiting_for"))
        return (f"为{target}生成待办" if by_system else f"{who(event)}为{target}增加任务") + waits
    target = p.get("assignee_id") or ("any holder of role " + " or ".join(roles) if roles else "an unnamed holder")
    waits = part(" (waits for {})", p.get("waiting_for"))
    return (f"task for {target}" if by_system else f"{who(event)} added a task for {target}") + waits


def _stage_completed(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, stage = event.payload, context.stage(event, lang)
    tally = p.get("tally") or {}
    conditions, outcome = listed(p.get("conditions"), lang, "; "), term(p.get("outcome"), lang)
    if lang == "zh":
        text = f"{stage}办结{part('：{}', outcome)}"
        text += ("（" + "，".join(f"{term(k, lang)}{v}票" for k, v in tally.items()) + "）") if tally else ""
        return text + part("；附条件：{}", conditions)
    text = f"{stage} completed{part(': {}', outcome)}"
    text += (" (" + ", ".join(f"{k} {v}" for k, v in tally.items()) + ")") if tally else ""
    return text + part("; conditions: {}", conditions)


def _clock_started(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    days, due = event.payload.get("working_days"), _due(event, lang)
    if lang == "zh":
        return f"法定期限开始计算{part('：{}个工作日', days)}{part('，至{}', due)}"
    return f"statutory period started{part(': {} working days', days)}{part(', due {}', due)}"


def _case_accepted(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    accepted = parse_time(event.payload.get("accepted_at"))
    when = local(accepted, lang) if accepted else None
    if event.payload.get("deemed"):
        if lang == "zh":
            return f"受理：期限内未作出受理决定或告知补正，自收到申请材料之日{part('（{}）', when)}起即为受理"
        return (
            "accepted: no decision or 补正 notice in time, so the application counts as accepted from receipt"
            + part(" ({})", when)
        )
    days, basis = event.payload.get("period_working_days"), event.payload.get("period_legal_basis")
    if lang == "zh":
        return f"受理{part('：{}', when)}" + part("，办理期限{}个工作日", days) + part("（{}）", basis)
    return f"accepted{part(' on {}', when)}" + part(", a period of {} working days", days) + part(" ({})", basis)


def _clock_resumed(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    kind = term(event.payload.get("kind"), lang)
    if lang == "zh":
        return f"{kind or '不计入期限的时间'}所需时间届满，法定期限恢复计算"
    return f"the time for the {kind or 'excluded period'} is over: the period runs again"


def _clock_reminder(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    clock, due = context.clock_name(event.payload.get("clock"), lang), _due(event, lang)
    if lang == "zh":
        return f"提醒：{clock}将于{due}到期" if due else f"提醒：{clock}即将到期"
    return f"reminder: {clock} is due {due or 'soon'}"


def _clock_escalated(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, clock = event.payload, context.clock_name(event.payload.get("clock"), lang)
    role = p.get("escalated_to_role")
    if lang == "zh":
        overdue = listed(p.get("overdue_tasks"), lang) or "无"
        return f"{clock}已超期{part('，已报送角色{}', role)}；超期任务：{overdue}"
    overdue = listed(p.get("overdue_tasks"), lang) or "none"
    return f"deadline of {clock} passed{part(', escalated to role {}', role)}; overdue tasks: {overdue}"


def _stage_abandoned(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, stage = event.payload, context.stage(event, lang)
    if lang == "zh":
        return f"{stage}中止{part('（第{}轮）', p.get('round'))}：另一分支已退回办件{part('（{}）', p.get('reason'))}"
    return f"{stage} abandoned{part(' (round {})', p.get('round'))}: another branch returned the case" + part(
        " ({})", p.get("reason")
    )


def _supervision_started(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, first = event.payload, parse_time(event.payload.get("first_review_at"))
    first_review = local(first, lang) if first else None
    if lang == "zh":
        limit = f"，最多复查{p['max_rounds']}次" if p.get("max_rounds") else "，直至撤销"
        every = part("每{}日复查一次", p.get("every_days")) or "接受复查"
        return f"开始监督：决定继续有效，{every}{limit}{part('；首次复查{}', first_review)}"
    limit = f", at most {p['max_rounds']} reviews" if p.get("max_rounds") else ", until withdrawn"
    every = part(" every {} days", p.get("every_days"))
    return (
        f"supervision started: the decision stays in force under review{every}{limit}"
        f"{part('; first review {}', first_review)}"
    )


def _timer_started(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    until, label = parse_time(event.payload.get("until")), event.payload.get("label")
    fires = local(until, lang) if until else None
    if lang == "zh":
        return f"计时开始{part('（{}）', label)}{part('：{}到点', fires)}"
    return f"timer started{part(' for {}', label)}{part(': fires {}', fires)}"


def _child_case(event: DomainEvent, lang: Lang) -> str:
    child = event.payload.get("child_case_id")
    if lang == "zh":
        return f"子办件{child}" if child else "未注明的子办件"
    return f"child case {child}" if child else "a child case"


def _child_started(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, review, child = event.payload, event.payload.get("review_round"), _child_case(event, lang)
    if lang == "zh":
        return f"{child}已发起{part('（{}）', p.get('process'))}{part('，于第{}次复查后', review)}；子办件单独记录"
    return (
        f"{child} started{part(' ({})', p.get('process'))}{part(' after review {}', review)}; it keeps its own record"
    )


def _child_completed(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, conditions = event.payload, listed(event.payload.get("conditions"), lang, "; ")
    status, child = term(p.get("status"), lang), _child_case(event, lang)
    if lang == "zh":
        return f"{child}办结{part('：{}', status)}{part('（附条件：{}）', conditions)}"
    return f"{child} completed{part(': {}', status)}{part(' (conditions: {})', conditions)}"


def _case_decided(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    outcome = term(event.payload.get("outcome"), lang)
    return f"办件审批决定{part('：{}', outcome)}" if lang == "zh" else f"case decided{part(': {}', outcome)}"


def _case_continued(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, previous = event.payload, event.payload.get("previous_run_id")
    reviews = p.get("supervision_round") or 0
    if lang == "zh":
        run = part("第{}次", p.get("run")) or "下一次"
        return f"办件转入{run}运行{part('（上一运行{}）', previous)}，状态与哈希链延续；已复查{reviews}次"
    return (
        f"case continued as new{part(' in run {}', p.get('run'))}{part(' (previous run {})', previous)}, state and "
        f"hash chain carried over; {reviews} review(s) so far"
    )


def _case_reset(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload
    first, last, old, new = (p.get(key) for key in ("superseded_from", "superseded_to", "old_run_id", "new_run_id"))
    point = p.get("reset_event_id")
    if lang == "zh":
        return (
            f"运维人员重置了办件流程{part('（历史事件{}）', point)}："
            f"原运行{said(old, lang)}记录的第{said(first, lang)}至{said(last, lang)}号事件保留但已被取代，"
            f"记录自此接续新运行{said(new, lang)}"
        )
    return (
        f"an operator reset the case's workflow{part(' (history event {})', point)}: "
        f"seq {said(first, lang)} to {said(last, lang)} recorded by run {said(old, lang)} are kept but superseded; "
        f"the record continues with run {said(new, lang)}"
    )


def _decision_disclosed(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, conditions = event.payload, listed(event.payload.get("conditions"), lang, "; ")
    decision = term(p.get("decision"), lang)
    if lang == "zh":
        return f"审批决定已依法公开{part('：{}', decision)}{part('；附条件：{}', conditions)}"
    return f"decision published{part(': {}', decision)}{part('; conditions: {}', conditions)}"


def _decision_notified(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload
    recipients, decision = said(listed(p.get("recipients"), lang), lang), term(p.get("decision"), lang)
    if lang == "zh":
        return f"审批决定{part('（{}）', decision)}已告知{recipients}，不予公开：涉及个人信息"
    because = part(": {}", p.get("not_published_because"))
    return f"decision{part(' ({})', decision)} notified to {recipients}, not published{because}"


_REMEDY_WORDS = {
    "administrative_reconsideration": ("申请行政复议", "administrative reconsideration"),
    "administrative_suit": ("提起行政诉讼", "an administrative suit"),
}


def _remedies_notified(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload
    refusal_to_accept = (p.get("concerns") or {}).get("kind") == "refusal_to_accept"
    reasons = [reason.get("comment") for reason in p.get("reasons") or []]
    votes = [", ".join(f"{term(k, lang)} {v}" for k, v in tally.items()) for tally in (p.get("votes") or {}).values()]
    remedies = [(r, _REMEDY_WORDS.get(r.get("kind"), (r.get("kind"), r.get("kind")))) for r in p.get("remedies") or []]
    if lang == "zh":
        routes = [
            f"{r.get('period')}{'日' if r.get('unit') == 'days' else '个月'}内向{r.get('organ')}{zh}"
            for r, (zh, _) in remedies
        ]
        what = "不予受理" if refusal_to_accept else "不予行政许可"
        because = "；".join(str(r) for r in reasons + [f"表决结果：{v}" for v in votes] if r) or "见决定"
        ways = "，或".join(routes) or said(None, "zh")
        return f"告知{what}的理由及救济途径：{because}；可自知道该决定之日起{ways}"
    routes = [f"{en} within {r.get('period')} {r.get('unit')} ({r.get('organ_en')})" for r, (_, en) in remedies]
    what = "refusal to accept" if refusal_to_accept else "refusal"
    because = "; ".join(str(r) for r in reasons + [f"vote: {v}" for v in votes] if r) or "see the decision"
    return f"{what} notified with reasons ({because}) and remedies: " + (", or ".join(routes) or said(None, "en"))


def _tolerance_determined(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, conditions = event.payload, listed(event.payload.get("conditions"), lang, "; ")
    determination, unit = term(p.get("determination"), lang), p.get("applying_unit")
    if lang == "zh":
        return f"容错认定{part('（{}）', unit)}{part('：{}', determination)}{part('；附条件：{}', conditions)}"
    return f"error tolerance determined{part(' for {}', unit)}{part(': {}', determination)}" + part(
        "; conditions: {}", conditions
    )


def _rectification_checked(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    in_time = ((event.payload.get("rectification") or {}).get("rectified_in_time")) is True
    if lang == "zh":
        return "整改核查：" + (
            "及时予以整改纠正，不影响绩效考核、评奖评优、晋职晋级和表彰奖励"
            if in_time
            else "未及时予以整改纠正，第二十五条第二句的保护不适用"
        )
    return "rectification check: " + (
        "rectified in time, no effect on assessment, awards, promotion or commendation (Art. 25)"
        if in_time
        else "not rectified in time, the protection of Art. 25, second sentence, does not apply"
    )


def _calendar_assumption(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload
    year, layers = p.get("year"), listed(p.get("layers"), lang)
    if lang == "zh":
        the_year = part("{}年", year) or "未注明年份的"
        if p.get("assumption") == "weekends_only":
            return f"{the_year}无官方节假日安排：工作日按周一至周五计算"
        return f"{the_year}{layers}节假日安排尚未正式发布：按推定安排计算工作日"
    the_year = part(" for {}", year) or " for a year not stated"
    if p.get("assumption") == "weekends_only":
        return f"no official holiday schedule{the_year}: working days counted Monday to Friday"
    return f"no official {part('{} ', layers)}holiday schedule{the_year} yet: working days counted on the assumed one"


def _deadlines_recomputed(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload

    def when(value: Any) -> str:
        moment = parse_time(value)
        return local_due(moment, lang) if moment else NOT_STATED[lang]

    moves = [
        (context.clock_name(move.get("clock"), lang), when(move.get("previous_due_at")), when(move.get("due_at")))
        for move in p.get("moved") or []
    ]
    year, layer = p.get("year"), p.get("layer")
    if lang == "zh":
        changed = "；".join(f"{clock}由{old}改为{new}" for clock, old, new in moves) or "各期限不变"
        schedule = f"{part('{}年', year)}节假日安排{part('（{}）', layer)}"
        return f"{who(event)}发布{schedule}，期限重新计算：{changed}"
    changed = "; ".join(f"{clock} from {old} to {new}" for clock, old, new in moves) or "no deadline moved"
    schedule = f"the {part('{} ', year)}holiday schedule{part(' ({})', layer)}"
    return f"{who(event)} published {schedule}; deadlines recounted: {changed}"


SYSTEM_WORDING: Mapping[EventType, Wording] = {
    EventType.case_started: Wording.of(_case_started),
    EventType.case_continued: Wording.of(_case_continued),
    EventType.case_reset: Wording.of(_case_reset, comment=True),
    EventType.case_decided: Wording.of(_case_decided),
    EventType.case_rejected: Wording("{who} ended the case: rejected", "{who}终结办件：不同意", comment=True),
    EventType.case_cancelled: Wording("{who} ended the case: cancelled", "{who}终结办件：已取消", comment=True),
    EventType.case_calendar_assumption: Wording.of(_calendar_assumption),
    EventType.case_deadlines_recomputed: Wording.of(_deadlines_recomputed),
    EventType.case_published: Wording.of(_decision_disclosed),
    EventType.case_notified: Wording.of(_decision_notified),
    EventType.case_remedies_notified: Wording.of(_remedies_notified),
    EventType.case_child_started: Wording.of(_child_started),
    EventType.case_child_completed: Wording.of(_child_completed),
    EventType.stage_started: Wording.of(_stage_started),
    EventType.stage_skipped: Wording(
        "{stage} skipped: its condition does not hold for this case", "{stage}跳过：本办件不满足其适用条件"
    ),
    EventType.stage_completed: Wording.of(_stage_completed),
    EventType.stage_abandoned: Wording.of(_stage_abandoned),
    EventType.task_created: Wording.of(_task_created),
    EventType.task_activated: Wording("task opened after {after} approved", "{after}同意后，任务开始办理"),
    EventType.task_cancelled: Wording("task cancelled", "任务已取消", comment=True),
    EventType.task_expired: Wording(
        "vote not cast by the deadline: counted as absent", "期限内未表决：按缺席计", comment=True
    ),
    EventType.clock_started: Wording.of(_clock_started),
    EventType.clock_reminder: Wording.of(_clock_reminder),
    EventType.clock_escalated: Wording.of(_clock_escalated),
    EventType.clock_resumed: Wording.of(_clock_resumed),
    EventType.case_accepted: Wording.of(_case_accepted),
    EventType.timer_started: Wording.of(_timer_started),
    EventType.timer_fired: Wording("timer fired: {label} is due", "计时到点：{label}"),
    EventType.supervision_started: Wording.of(_supervision_started),
    EventType.supervision_ended: Wording(
        "supervision ended after {rounds} review(s): the decision stands", "监督结束，共复查{rounds}次：决定维持"
    ),
    EventType.error_tolerance_determined: Wording.of(_tolerance_determined),
    EventType.error_tolerance_effect_recorded: Wording.of(_rectification_checked),
    EventType.document_issued: Wording(
        "{who} issued the official document {number} ({kind}), SHA-256 {sha256}",
        "{who}印发{title}{number}（SHA-256 {sha256}）",
    ),
}
"""The events the workflows record on their own (no operation causes them), worded. ``task.created`` is here
though 加签 (``add-signer``) records one too: most tasks are opened by a stage; the wording says who added it."""
