"""The web console in a real headless Chromium (Debian's, driven by Playwright) against the live stack:
uvicorn serving the real app, the Temporal dev server, PostgreSQL and the engine's worker.

The demo principals of `approvals dev` are added to the live API's tokens file, so the sign-in page offers
them as it does on a developer's machine."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import jwt
import pytest
import pytest_asyncio

from approvals.cli.demo import project_request
from approvals.devstack.identities import write_dev_tokens
from tests.api_server import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, LiveApi, live_api_fixture

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
"""A directory: the inbox, task and auditor tests save what the browser shows there (docs/screenshots/)."""
if not CHROMIUM.exists() or shutil.which("chromium") is None:
    pytest.skip(
        "Debian's chromium is not installed (`make install` installs it as root: apt-get install -y chromium)",
        allow_module_level=True,
    )

from playwright.async_api import Browser, Locator, Page, async_playwright, expect  # noqa: E402

api = live_api_fixture("console")

REVIEWER = "reviewer-industrial-policy"
OFFICER = "one-window-officer"
PORTAL = "svc-one-window-portal"
AUDITOR = "auditor"


@pytest_asyncio.fixture(scope="module")
async def demo_tokens(api: LiveApi) -> dict[str, str]:
    """The demo principals, added to the live API's tokens file as `approvals dev` writes them."""
    assert api.settings.auth_tokens_file is not None
    entries = write_dev_tokens(api.settings.auth_tokens_file)
    return {entry["id"]: entry["token"] for entry in entries if "token" in entry}


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    yield await context.new_page()
    await context.close()


async def sign_in(page: Page, api: LiveApi, who: str) -> None:
    await page.goto(f"{api.url}/console/")
    await expect(page).to_have_url(f"{api.url}/console/login")
    await page.get_by_label("以此身份登录").select_option(who)
    await page.get_by_role("button", name="登录").first.click()
    await expect(page).to_have_url(f"{api.url}/console/")


async def accepted_project_case(api: LiveApi, tokens: dict[str, str]) -> tuple[str, str]:
    """A project-approval case past 受理, its industrial-policy review task open: (case id, task id)."""
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:

        def as_(who: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[who]}"}

        body = project_request(f"WEB-{uuid.uuid4().hex[:8]}")
        started = await http.post("/v1/cases/project-approval", json=body, headers=as_(PORTAL))
        assert started.status_code == 201, started.text
        case_id = started.json()["case_id"]
        acceptance = await open_task(http, as_(OFFICER), case_id, "acceptance")
        decided = await http.post(f"/v1/tasks/{acceptance}/decide", json={"decision": "approve"}, headers=as_(OFFICER))
        assert decided.status_code == 200, decided.text
        return case_id, await open_task(http, as_(REVIEWER), case_id, "industrial_policy")


async def open_task(http: httpx.AsyncClient, headers: dict[str, str], case_id: str, stage: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = await http.get("/v1/inbox", params={"stage": stage, "limit": 200}, headers=headers)
        found = [t["task_id"] for t in response.json()["items"] if t["case_id"] == case_id]
        if found:
            return found[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no open {stage} task of {case_id}")


async def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=Path(SCREENSHOTS) / f"{name}.png", full_page=True)


# --- sign-in ----------------------------------------------------------------------------------------------


async def test_sign_in_keeps_the_token_in_an_http_only_strict_cookie_and_sign_out_ends_it(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    await sign_in(page, api, REVIEWER)
    await expect(page.get_by_role("heading", name="待办")).to_be_visible()
    [session] = [c for c in await page.context.cookies() if c["name"] == "console_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert session["value"] == demo_tokens[REVIEWER]
    assert await page.evaluate("document.cookie") == "" or "console_session" not in await page.evaluate(
        "document.cookie"
    )
    await page.get_by_role("button", name="退出登录").click()
    await expect(page).to_have_url(f"{api.url}/console/login")
    await page.goto(f"{api.url}/console/")
    await expect(page).to_have_url(f"{api.url}/console/login")


async def test_a_pasted_unknown_token_is_refused_with_the_reason(page: Page, api: LiveApi, demo_tokens: Any) -> None:
    await page.goto(f"{api.url}/console/login")
    await page.get_by_label("令牌", exact=True).fill("not-a-token")
    await page.get_by_role("button", name="登录").last.click()
    await expect(page.get_by_role("alert")).to_contain_text("the bearer token is not known")


async def test_a_form_without_this_browsers_csrf_token_is_refused(api: LiveApi, demo_tokens: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=api.url, cookies={"console_csrf": "real"}) as http:
        response = await http.post("/console/login", data={"principal_id": REVIEWER, "csrf": "forged"})
    assert response.status_code == 403 and "console_session" not in response.cookies


# --- the reviewer's inbox ---------------------------------------------------------------------------------


async def test_the_reviewer_finds_the_project_task_in_the_inbox_with_its_working_days_left(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, task_id = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, REVIEWER)
    row = page.locator("tr.task", has_text=case_id)
    await expect(row).to_contain_text("产业政策审查")
    await expect(row).to_contain_text("Art. 10")
    await expect(row.locator(".clock")).to_have_class("clock clock-on-time")
    await expect(row.locator(".clock")).to_contain_text("剩余")
    await expect(row).to_contain_text("UTC+8")
    await page.get_by_label("范围").select_option("mine")
    await page.get_by_role("button", name="筛选").click()
    await expect(page.locator("tr.task", has_text=case_id)).to_have_count(0)
    await page.get_by_label("范围").select_option("pool")
    await page.get_by_role("button", name="筛选").click()
    await expect(page.locator("tr.task", has_text=case_id)).to_have_count(1)


async def test_the_inbox_shows_a_new_task_without_a_reload(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    await sign_in(page, api, REVIEWER)
    await page.evaluate("window.notReloaded = true")
    case_id, _ = await accepted_project_case(api, demo_tokens)
    await expect(page.locator("tr.task", has_text=case_id)).to_have_count(1, timeout=25_000)
    assert await page.evaluate("window.notReloaded === true")


# --- the task page ----------------------------------------------------------------------------------------


async def open_from_inbox(page: Page, case_id: str) -> None:
    await page.locator("tr.task", has_text=case_id).get_by_role("link").click()
    await expect(page.get_by_role("heading", name="本任务")).to_be_visible()


async def test_the_reviewer_claims_the_task_and_approves_the_dimension_with_an_opinion(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, task_id = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, REVIEWER)
    await open_from_inbox(page, case_id)
    await expect(page.locator("dl.data").first).to_contain_text("Art. 10")
    application = page.locator("section", has=page.get_by_role("heading", name="申请内容"))
    await expect(application).to_contain_text("进口铜精矿保税加工生产线")
    await expect(application).not_to_contain_text("{")
    await expect(application).to_contain_text("统一社会信用代码")
    await expect(page.locator("table.timeline")).to_contain_text("UTC+8")
    await page.locator("#op-claim").get_by_role("button", name="签收").click()
    await expect(page.get_by_role("status")).to_contain_text("已完成：签收")
    await expect(page.locator("#op-claim")).to_have_count(0)
    await screenshot(page, "task")
    decide = page.locator("#op-decide")
    await decide.get_by_label("审批结论").select_option("approve")
    await decide.get_by_label("审批意见").fill("符合园区产业政策，同意。")
    await decide.get_by_role("button", name="审批").click()
    await expect(page.get_by_role("status")).to_contain_text("已完成：审批")
    row = page.locator("section", has=page.get_by_role("heading", name="本环节任务")).locator("tr", has_text=task_id)
    await expect(row).to_contain_text("同意")
    await expect(row).to_contain_text("符合园区产业政策，同意。")
    await expect(page.locator("table.timeline")).to_contain_text("符合园区产业政策，同意。")
    await page.get_by_role("link", name="已办").click()
    await expect(page.locator("tr.task", has_text=case_id)).to_contain_text("同意")


async def test_a_form_sent_twice_is_applied_once(page: Page, api: LiveApi, demo_tokens: dict[str, str]) -> None:
    case_id, task_id = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, REVIEWER)
    await open_from_inbox(page, case_id)
    form = page.locator("#op-claim")
    fields = {
        name: await form.locator(f"input[name={name}]").get_attribute("value") or ""
        for name in ("csrf", "expected_version", "task", "request_id")
    }
    action = f"{api.url}{await form.get_attribute('action')}"
    for _ in range(2):
        sent = await page.request.post(action, form=fields, max_redirects=0)
        assert sent.status == 303, await sent.text()
    await page.reload()
    claims = page.locator("table.timeline tr.event", has_text="签收了任务")
    await expect(claims).to_have_count(1)


async def test_a_refused_decision_shows_the_engines_reason_in_words_and_keeps_the_form(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, _ = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, REVIEWER)
    await open_from_inbox(page, case_id)
    decide = page.locator("#op-decide")
    await decide.get_by_label("审批结论").select_option("reject")
    await decide.get_by_role("button", name="审批").click()
    await expect(page.get_by_role("alert")).to_contain_text("此决定须填写审批意见")
    await expect(page.get_by_role("alert")).to_contain_text("COMMENT_REQUIRED")
    await expect(page.locator("#op-decide").get_by_label("审批结论")).to_have_value("reject")
    decide = page.locator("#op-decide")
    await decide.get_by_label("附加条件（每行一条）").fill("补充产能说明")
    await decide.get_by_role("button", name="审批").click()
    await expect(page.get_by_role("alert")).to_contain_text("表单填写不完整或有误")
    await expect(page.get_by_role("alert")).to_contain_text("conditions are only given with approve_with_conditions")
    await expect(decide.get_by_label("附加条件（每行一条）")).to_have_value("补充产能说明")


async def test_the_applicant_holding_the_reviewer_role_is_refused_in_words(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, task_id = await accepted_project_case(api, demo_tokens)
    claims = {"sub": "ent-applicant", "name": "申请人", "roles": ["reviewer_industrial_policy"]}
    token = jwt.encode(
        {**claims, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "exp": int(time.time()) + 600}, JWT_SECRET, "HS256"
    )
    await page.goto(f"{api.url}/console/login")
    await page.get_by_label("令牌", exact=True).fill(token)
    await page.get_by_role("button", name="登录").last.click()
    await page.goto(f"{api.url}/console/tasks/{task_id}")
    await page.locator("#op-decide").get_by_label("审批意见").fill("同意")
    await page.locator("#op-decide").get_by_role("button", name="审批").click()
    await expect(page.get_by_role("alert")).to_contain_text("申请人不能审批自己的申请")
    await expect(page.locator("#op-decide").get_by_label("审批意见")).to_have_value("同意")


async def test_a_task_changed_meanwhile_shows_its_new_state_and_asks_again(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, task_id = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, REVIEWER)
    await open_from_inbox(page, case_id)
    async with httpx.AsyncClient(base_url=api.url) as http:
        headers = {"Authorization": f"Bearer {demo_tokens[REVIEWER]}"}
        claimed = await http.post(f"/v1/tasks/{task_id}/claim", json={}, headers=headers)
        assert claimed.status_code == 200, claimed.text
    await page.locator("#op-decide").get_by_label("审批意见").fill("同意")
    await page.locator("#op-decide").get_by_role("button", name="审批").click()
    await expect(page.get_by_role("alert")).to_contain_text("该任务已被他人更新")
    await expect(page.locator("dl.data").first).to_contain_text(f"{REVIEWER} 已签收")
    await expect(page.locator("#op-decide").get_by_label("审批意见")).to_have_value("同意")
    await page.locator("#op-decide").get_by_role("button", name="审批").click()
    await expect(page.get_by_role("status")).to_contain_text("已完成：审批")


async def test_a_reviewer_copies_the_case_to_a_colleague_who_finds_it_under_copied_to_me(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, task_id = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, REVIEWER)
    await page.goto(f"{api.url}/console/tasks/{task_id}")
    await page.locator("summary", has_text="抄送").click()
    cc = page.locator("#op-cc")
    await cc.get_by_label("抄送给（用户编号，每行一个）").fill("reviewer-legal")
    await cc.get_by_label("办理意见").fill("请知悉")
    await cc.get_by_role("button", name="抄送").click()
    await expect(page.get_by_role("status")).to_contain_text("已完成：抄送")
    await page.get_by_role("button", name="退出登录").click()
    await sign_in(page, api, "reviewer-legal")
    await page.get_by_role("link", name="抄送我的").click()
    await expect(page.locator("tr.case", has_text=case_id)).to_have_count(1)


async def test_the_officer_asks_for_supplementary_material_from_the_acceptance_task(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        portal, officer = ({"Authorization": f"Bearer {demo_tokens[who]}"} for who in (PORTAL, OFFICER))
        body = project_request(f"WEB-{uuid.uuid4().hex[:8]}")
        case_id = (await http.post("/v1/cases/project-approval", json=body, headers=portal)).json()["case_id"]
        await open_task(http, officer, case_id, "acceptance")
    await sign_in(page, api, OFFICER)
    await open_from_inbox(page, case_id)
    await page.locator("summary", has_text="一次性告知补正材料").click()
    form = page.locator("#op-request-supplement")
    await form.get_by_label("需补正材料（每行一项：材料: 理由）").fill("营业执照副本: 已过期\n环评批复")
    notice = "https://docs.example.test/notices/补正告知书.pdf"
    await form.get_by_label("附件（每行一份：URI|SHA-256|字节数|名称|媒体类型）").fill(
        f"{notice}|{'f' * 64}|2048|补正告知书|application/pdf"
    )
    await form.get_by_role("button", name="一次性告知补正材料").click()
    await expect(page.get_by_role("status")).to_contain_text("已完成：一次性告知补正材料")
    await expect(page.locator("p", has_text="业务编号")).to_contain_text("待补正")
    await expect(page.locator("table.timeline")).to_contain_text("一次性告知补正材料：营业执照副本、环评批复")
    await expect(page.locator("table.timeline")).to_contain_text("附件：补正告知书")
    # the task page lists the act's attachment: the act, who, its size and digest, a link where it can be fetched
    attached = page.locator("table.attachments tbody tr")
    await expect(attached).to_have_count(1)
    await expect(attached).to_contain_text("一次性告知补正材料")
    await expect(attached).to_contain_text("2048")
    await expect(attached).to_contain_text("f" * 64)
    await expect(attached.get_by_role("link", name="补正告知书")).to_have_attribute("href", notice)


# --- the auditor ------------------------------------------------------------------------------------------


async def test_the_auditor_finds_the_case_reads_its_timeline_and_verifies_its_chain(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, _ = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, AUDITOR)
    await page.get_by_role("link", name="办件查询").click()
    today = datetime.now(timezone(timedelta(hours=8))).date()
    await page.get_by_label("业务编号").fill(case_id.split(":", 1)[1])
    await page.get_by_label("发起日期从（UTC+8）").fill((today + timedelta(days=1)).isoformat())
    await page.get_by_role("button", name="查询").click()
    await expect(page.get_by_role("link", name=case_id)).to_have_count(0)
    await page.get_by_label("发起日期从（UTC+8）").fill("")
    await page.get_by_label("申请人名称或统一社会信用代码").fill("另一家公司")
    await page.get_by_role("button", name="查询").click()
    await expect(page.get_by_role("link", name=case_id)).to_have_count(0)
    await page.get_by_label("申请人名称或统一社会信用代码").fill("示例物流")
    await page.get_by_role("button", name="查询").click()
    await expect(page.get_by_role("link", name=case_id)).to_have_count(1)
    await page.get_by_label("发起日期从（UTC+8）").fill(today.isoformat())
    await page.get_by_label("至").fill(today.isoformat())
    await page.get_by_label("申请人名称或统一社会信用代码").fill("91350100m000100y43")
    await page.get_by_role("button", name="查询").click()
    await page.get_by_role("link", name=case_id).click()
    timeline = page.locator("table.timeline")
    await expect(timeline.locator("tr.event").first).to_contain_text("UTC+8")
    await expect(timeline).to_contain_text("受理")
    await expect(page.locator("svg.chart rect")).not_to_have_count(0)
    await page.get_by_role("button", name="立即校验").click()
    await expect(page.locator("#verdict")).to_contain_text("审计链校验通过")
    await screenshot(page, "auditor")
    await page.get_by_label("事件序号").fill("1")
    await page.get_by_role("button", name="查看当时状态").click()
    await expect(page.locator("section", has=page.get_by_role("heading", name="某一事件时的状态"))).to_contain_text(
        "As of seq"
    )
    link = page.get_by_role("link", name="在 Temporal Web UI 中查看（运维）")
    assert "/workflows/" in (await link.get_attribute("href") or "")
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="下载签名审计包").click()
    bundle = await (await downloading.value).path()
    with zipfile.ZipFile(bundle) as zipped:
        names = {Path(name).name for name in zipped.namelist()}
    assert {"manifest.json", "manifest.sig.json", "events.json", "history.json"} <= names


async def test_the_language_switch_turns_the_console_to_english_and_back(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    await sign_in(page, api, REVIEWER)
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="To do")).to_be_visible()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await page.get_by_role("link", name="中文").click()
    await expect(page.get_by_role("heading", name="待办")).to_be_visible()


# --- the whole case in the browser -----------------------------------------------------------------------

DEPARTMENT_REVIEWERS = (
    "reviewer-industrial-policy", "reviewer-planning", "reviewer-environment", "reviewer-safety", "reviewer-land-use",
)  # fmt: skip


async def decide_in_browser(page: Page, api: LiveApi, who: str, case_id: str, opinion: str) -> None:
    """``who`` signs in, opens the case's task from the inbox, claims it when it is a pool task, approves."""
    await page.context.clear_cookies()
    await sign_in(page, api, who)
    await open_from_inbox(page, case_id)
    if await page.locator("#op-claim").count():
        await page.locator("#op-claim").get_by_role("button", name="签收").click()
        await expect(page.get_by_role("status")).to_contain_text("已完成：签收")
    decide = page.locator("#op-decide")
    await decide.get_by_label("审批结论").select_option("approve")
    await decide.get_by_label("审批意见").fill(opinion)
    await decide.get_by_role("button", name="审批").click()
    await expect(page.get_by_role("status")).to_contain_text("已完成：审批")


async def test_a_project_approval_case_is_started_worked_to_its_decision_and_verified_in_the_browser(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    await sign_in(page, api, PORTAL)
    await page.get_by_role("link", name="发起办件").click()
    sample = page.locator("section", has=page.get_by_role("heading", name="申请内容"))
    await expect(sample).to_contain_text("Imported copper concentrate bonded processing line")
    await expect(sample).to_contain_text("统一社会信用代码")
    await expect(page.get_by_label("发起请求（JSON", exact=False)).to_be_hidden()
    await page.get_by_role("button", name="发起", exact=True).click()
    await expect(page.locator("table.timeline")).to_contain_text("发起办件", timeout=15_000)  # the page reloads
    case_id = unquote(page.url.rsplit("/", 1)[1])
    await decide_in_browser(page, api, OFFICER, case_id, "材料齐全，予以受理。")
    for reviewer in DEPARTMENT_REVIEWERS:
        await decide_in_browser(page, api, reviewer, case_id, "审查通过，同意。")
    await decide_in_browser(page, api, "approving-official", case_id, "同意建设。")
    await page.context.clear_cookies()
    await sign_in(page, api, AUDITOR)
    await page.goto(f"{api.url}/console/cases/{case_id}?verify=true")
    await expect(page.locator("dl.data")).to_contain_text("已批准")
    await expect(page.locator("#verdict")).to_contain_text("审计链校验通过")
    await expect(page.locator("svg.chart rect")).to_have_count(7)


# --- offline ----------------------------------------------------------------------------------------------


async def test_docs_redoc_and_the_console_render_with_no_request_leaving_the_machine(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    """ReDoc's bundle always tries its vendor's logo from a CDN; the page's Content-Security-Policy stops that
    in the browser (a failure "csp"), so the request never goes out."""
    sent: list[str] = []
    blocked: list[str] = []
    page.on("requestfinished", lambda request: sent.append(request.url))
    page.on(
        "requestfailed",
        lambda request: (blocked if "csp" in (request.failure or "").lower() else sent).append(request.url),
    )
    await page.goto(f"{api.url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Alashankou approvals engine")
    await expect(page.locator(".opblock").first).to_be_visible()
    await page.goto(f"{api.url}/redoc")
    await expect(page.get_by_role("heading", name="Alashankou approvals engine").first).to_be_visible()
    await sign_in(page, api, REVIEWER)
    await page.wait_for_load_state("networkidle")
    local = (f"{api.url}/", f"blob:{api.url}/", "data:")
    assert sent and [url for url in sent if not url.startswith(local)] == []
    assert all(url.startswith(local) or url.startswith("https://cdn.redoc.ly/") for url in blocked), blocked
    assert any(url.endswith("/static-offline-docs/swagger-ui-bundle.js") for url in sent)
    assert any(url.endswith("/static-offline-docs/redoc.standalone.js") for url in sent)
    assert any(url.endswith("/console/static/console.css") for url in sent)


async def test_a_task_whose_case_waits_for_supplementary_material_shows_its_clock_paused(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        portal, officer = ({"Authorization": f"Bearer {demo_tokens[who]}"} for who in (PORTAL, OFFICER))
        started = await http.post(
            "/v1/cases/project-approval", json=project_request(f"WEB-{uuid.uuid4().hex[:8]}"), headers=portal
        )
        case_id = started.json()["case_id"]
        await open_task(http, officer, case_id, "acceptance")
        asked = await http.post(
            f"/v1/cases/{case_id}/request-supplement", json={"items": [{"item": "营业执照副本"}]}, headers=officer
        )
        assert asked.status_code == 200, asked.text
    await sign_in(page, api, OFFICER)
    row = page.locator("tr.task", has_text=case_id)
    await expect(row.locator(".clock")).to_have_class("clock clock-paused")
    await expect(row.locator(".clock")).to_contain_text("已暂停计时")


# --- accessibility ----------------------------------------------------------------------------------------

UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map(e => e.outerHTML)"""
COLOURS = """(selector) => [...document.querySelectorAll(selector)].map(e => {
    const style = getComputedStyle(e);
    let back = e, background = style.backgroundColor;
    while (background === 'rgba(0, 0, 0, 0)' && back.parentElement) {
        back = back.parentElement; background = getComputedStyle(back).backgroundColor;
    }
    return [style.color, background === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : background];
})"""


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two ``rgb(r, g, b)`` colours."""

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


async def test_every_field_is_labelled_text_has_contrast_and_the_keyboard_reaches_the_actions(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    case_id, _ = await accepted_project_case(api, demo_tokens)
    await sign_in(page, api, REVIEWER)
    await screenshot(page, "inbox")
    assert await page.evaluate(UNLABELLED_CONTROLS) == []
    for selector in ("body", "a", "th", "td", ".clock", "caption"):
        for foreground, background in await page.evaluate(COLOURS, selector):
            assert contrast(foreground, background) >= 4.5, (selector, foreground, background)
    await open_from_inbox(page, case_id)
    assert await page.evaluate(UNLABELLED_CONTROLS) == []
    for _ in range(60):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent.trim()") == "签收":
            break
    else:
        raise AssertionError("Tab never reached the claim button")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("已完成：签收")


# --- the statistics (issue 19's dashboard) ---------------------------------------------------------------


def figure_cell(table: Locator, row_name: str) -> Locator:
    """The value cells of the row headed ``row_name`` (exactly)."""
    return table.locator("tr", has=table.page.locator("th", has_text=re.compile(f"^{re.escape(row_name)}$"))).locator(
        "td"
    )


async def test_the_auditor_reads_the_statistics_with_their_charts_and_downloads_the_csv(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    await accepted_project_case(api, demo_tokens)
    today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        read = await http.get(
            "/v1/reports/summary",
            params={"from": today, "to": today},
            headers={"Authorization": f"Bearer {demo_tokens[AUDITOR]}"},
        )
    assert read.status_code == 200, read.text
    expected = read.json()
    [project] = [group for group in expected["groups"] if group["key"] == "project-approval"]
    await sign_in(page, api, AUDITOR)
    await page.get_by_role("link", name="统计报表").click()
    await page.get_by_label("收件日期从").fill(today)
    await page.get_by_label("收件日期至").fill(today)
    await page.get_by_label("分组方式").select_option("process")
    await page.get_by_role("button", name="统计").click()
    await expect(figure_cell(page.locator("table.total"), "收件数")).to_have_text(str(expected["total"]["received"]))
    await expect(figure_cell(page.locator("table.total"), "受理数")).to_have_text(str(expected["total"]["accepted"]))
    groups = page.locator("table.groups")
    await expect(groups.locator("caption")).to_be_visible()
    await expect(groups.locator("thead th[scope=col]").first).to_have_text("事项")
    project_row = figure_cell(groups, "建设项目审查 Construction project approval (Art. 10)")
    await expect(project_row.first).to_have_text(str(project["received"]))
    charts = page.locator("figure.report-chart svg[role=img]")
    await expect(charts).to_have_count(3)
    await expect(charts.first.locator("path").first).to_be_attached()
    await expect(page.locator("figure.report-chart figcaption").first).to_have_text("每月收件与办结")
    await screenshot(page, "dashboard")
    assert await page.evaluate(UNLABELLED_CONTROLS) == []
    for selector in ("body", "a", "th", "td", "caption", "figcaption", "label"):
        for foreground, background in await page.evaluate(COLOURS, selector):
            assert contrast(foreground, background) >= 4.5, (selector, foreground, background)
    reached = set()
    for _ in range(40):
        await page.keyboard.press("Tab")
        reached.add(await page.evaluate("document.activeElement.textContent.trim()"))
        if "下载 CSV" in reached:
            break
    assert {"统计", "下载 CSV"} <= reached, reached
    async with page.expect_download() as downloading:
        await page.keyboard.press("Enter")
    download = await downloading.value
    assert download.suggested_filename == f"report-{today}-{today}-process.csv"
    text = Path(await download.path()).read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:2] == ["事项 process", "收件数 received"]
    [total] = [row for row in rows if row and row[0] == "合计 total"]
    assert total[1] == str(expected["total"]["received"])


async def test_a_bad_period_is_shown_beside_its_field_as_typed(page: Page, api: LiveApi, demo_tokens: Any) -> None:
    await sign_in(page, api, AUDITOR)
    response = await page.goto(f"{api.url}/console/reports?from=2026-02-30&to=2026-03-01&group_by=unit")
    assert response is not None and response.status == 422
    start = page.get_by_label("收件日期从")
    await expect(start).to_have_value("2026-02-30")
    await expect(start).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#r-from-error")).to_have_text(
        "“2026-02-30”不是有效日期：请按 YYYY-MM-DD 填写，如 2026-03-01。"
    )
    await expect(page.get_by_label("分组方式")).to_have_value("unit")
    await expect(page.locator("table.figures")).to_have_count(0)
    await page.get_by_label("收件日期从").fill("2026-03-02")
    await page.get_by_role("button", name="统计").click()
    await expect(page.locator("#r-from-error")).to_contain_text("起始日期晚于截止日期")
    await expect(page.get_by_label("收件日期从")).to_have_value("2026-03-02")
    await expect(page.get_by_label("收件日期至")).to_have_value("2026-03-01")
    await page.get_by_role("link", name="English").click()  # the same period, in English
    await expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
    await expect(page.locator("#r-from-error")).to_contain_text("The period starts after it ends.")
    await expect(page.get_by_label("Received from")).to_have_value("2026-03-02")
    await page.get_by_role("link", name="中文").click()


async def test_a_reviewer_has_no_statistics_and_is_refused_them_in_words(
    page: Page, api: LiveApi, demo_tokens: dict[str, str]
) -> None:
    await sign_in(page, api, REVIEWER)
    await expect(page.get_by_role("link", name="待办")).to_be_visible()
    await expect(page.get_by_role("link", name="统计报表")).to_have_count(0)
    for path in ("/console/reports", "/console/reports/summary.csv?from=2026-01-01&to=2026-12-31"):
        response = await page.goto(f"{api.url}{path}")
        assert response is not None and response.status == 403
        await expect(page.get_by_role("alert")).to_contain_text("你的角色无权进行此操作")
        await expect(page.get_by_role("alert")).to_contain_text("ROLE_REQUIRED")
