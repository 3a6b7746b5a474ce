"""Who a development stack lets in: one demo principal per role the processes use, their bearer tokens
(``<data>/dev-tokens.json``; production never reads that file), and what the demo's starters may do."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from approvals.settings import Settings
from schemas.committee import CommitteeRoster

__all__ = ["DEMO_PRINCIPALS", "DEV_ADMISSION", "DemoPrincipal", "with_dev_admission", "write_dev_tokens"]

DEV_COMMITTEE = CommitteeRoster(
    revision="dev: demo roster",
    chair="committee-chair",
    members=["committee-member-a", "committee-member-b", "committee-member-c"],
)
DEV_ADMISSION: dict[str, Any] = {
    "freeform_definitions": True,
    "applicants_by_starter": {"*": ["ent-*", "organ-*"]},
    "committee_rosters": {"error-tolerance": DEV_COMMITTEE, "talent-policy": DEV_COMMITTEE},
}
"""What a development stack lets its starters do unless the environment says otherwise: start `generic` cases
from their own definitions, for the demo's applicants: enterprises (`ent-…`) and, for the Committee's own
proposals such as its function catalogue, the organ (`organ-…`); and the committees that vote, seated from
the demo's committee members and chair."""


def with_dev_admission(settings: Settings) -> dict[str, Any]:
    """The DEV_ADMISSION settings the environment did not set itself."""
    return {name: value for name, value in DEV_ADMISSION.items() if name not in settings.model_fields_set}


@dataclass(frozen=True)
class DemoPrincipal:
    id: str
    name: str
    unit: str
    roles: tuple[str, ...]


DEMO_PRINCIPALS: tuple[DemoPrincipal, ...] = (
    DemoPrincipal("svc-one-window-portal", "一窗受理平台 (one-window portal service)", "一窗受理平台", ("service",)),
    DemoPrincipal(
        "ent-applicant", "新疆示例物流有限公司 经办人 (enterprise applicant)", "新疆示例物流有限公司", ("applicant",)
    ),
    DemoPrincipal("one-window-officer", "受理窗口 王受理 (acceptance officer)", "政务服务中心", ("one_window",)),
    DemoPrincipal(
        "reviewer-industrial-policy",
        "产业政策审查 李审 (industrial policy)",
        "经济发展局",
        ("reviewer_industrial_policy",),
    ),
    DemoPrincipal("reviewer-planning", "规划审查 张审 (planning)", "规划建设局", ("reviewer_planning",)),
    DemoPrincipal("reviewer-environment", "环保审查 赵审 (environment)", "生态环境分局", ("reviewer_environment",)),
    DemoPrincipal("reviewer-safety", "安全审查 钱审 (safety)", "应急管理局", ("reviewer_safety",)),
    DemoPrincipal("reviewer-land-use", "用地审查 孙审 (land use)", "自然资源局", ("reviewer_land_use",)),
    DemoPrincipal("reviewer-legal", "合法性审查 李法审 (legal review)", "司法局", ("reviewer_legal",)),
    DemoPrincipal(
        "land-use-change-reviewer", "用地变更审查 周审 (land-use change)", "自然资源局", ("land_use_change_reviewer",)
    ),
    DemoPrincipal(
        "safety-risk-assessor", "安全风险评估 吴评 (safety risk assessment)", "应急管理局", ("safety_risk_assessor",)
    ),
    DemoPrincipal(
        "approving-official", "市政府审批 郑批 (approving official)", "阿拉山口市人民政府", ("approving_official",)
    ),
    DemoPrincipal("organ-head", "管委会主任 冯主任 (organ head)", "管委会", ("head",)),
    DemoPrincipal("supervisor", "督办 陈督办 (supervisor)", "管委会办公室", ("supervisor",)),
    DemoPrincipal("committee-member-a", "评审委员 A (committee member)", "评审委员会", ("committee_member",)),
    DemoPrincipal("committee-member-b", "评审委员 B (committee member)", "评审委员会", ("committee_member",)),
    DemoPrincipal("committee-member-c", "评审委员 C (committee member)", "评审委员会", ("committee_member",)),
    DemoPrincipal("committee-chair", "评审委员会主任 褚主任 (committee chair)", "评审委员会", ("committee_chair",)),
    DemoPrincipal(
        "discipline-inspector", "纪检监察 卫纪检 (discipline inspection)", "纪检监察工委", ("discipline_inspector",)
    ),
    DemoPrincipal("hr-officer", "人事 蒋人事 (HR officer)", "党群工作部", ("hr_officer",)),
    DemoPrincipal(
        "unit-head-planning", "规划建设局局长 韩局长 (unit head, planning)", "规划建设局", ("unit_head",)
    ),  # hands over the tasks of 规划建设局's staff (POST /v1/handovers)
    DemoPrincipal("auditor", "审计 沈审计 (auditor)", "审计局", ("auditor",)),
    DemoPrincipal("admin", "系统管理员 (administrator)", "管委会信息中心", ("admin",)),
)
"""One demo principal per role the processes use (three committee members for quorum votes), and the head of a
unit, the auditor and the admin."""


def write_dev_tokens(path: Path) -> list[dict[str, Any]]:
    """One random bearer token per demo principal. Existing tokens are kept, so they stay valid across
    restarts (delete the file to rotate them); a principal added to the engine since gets a token of its own."""
    entries: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    known = {entry["id"] for entry in entries}
    added = [
        {"token": secrets.token_urlsafe(32), **asdict(principal), "roles": list(principal.roles)}
        for principal in DEMO_PRINCIPALS
        if principal.id not in known
    ]
    if not added:
        return entries
    entries += added
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return entries
