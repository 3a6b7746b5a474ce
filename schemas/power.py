"""A catalogue of management and service functions the Committee proposes to exercise (Art. 4, Art. 3).

Art. 4 (last paragraph): the Management Committee may, by actual need and its capacity to take on powers
(承接能力), propose a catalogue of the management and service functions it exercises; the catalogue takes
effect after approval by statutory procedure and is then published. Art. 3: the prefecture and Alashankou
city governments authorize or entrust (授权 / 委托) economic-management powers to the zone, and guide,
supervise and dynamically adjust them.

Validated when the case starts, so a proposal with an item the Committee cannot take on, or with a code
listed twice, is refused naming the item before any workflow exists. Every rule here is a pure function of
the proposal: it is validated again inside the workflow on every replay, so nothing reads a clock.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from schemas.case import AttachmentRef, UserId
from schemas.text import CleanModel

REGULATION_IN_FORCE = date(2026, 1, 1)
"""Art. 30: the regulation is in force from 2026-01-01; no catalogue under it can take effect earlier."""

MIN_LAW_ENFORCEMENT_OFFICERS = 2
"""Administrative Penalty Law Art. 42: penalties are imposed by at least two officers qualified for law
enforcement; administrative inspections are held to the same rule."""


class PowerKind(StrEnum):
    licensing = "licensing"  # 行政许可
    penalty = "penalty"  # 行政处罚
    inspection = "inspection"  # 行政检查
    other = "other"  # 其他管理和服务职能


class DelegationMode(StrEnum):
    authorize = "authorize"  # 授权: exercised in the Committee's own name
    entrust = "entrust"  # 委托: exercised in the entrusting government's name


class GrantingAuthority(StrEnum):
    prefecture_government = "prefecture_government"  # 博尔塔拉蒙古自治州人民政府
    alashankou_city_government = "alashankou_city_government"  # 阿拉山口市人民政府


class LegalSource(CleanModel):
    """The law or regulation, and its article, the power comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    law: str = Field(min_length=1, max_length=300, description="e.g. 《中华人民共和国海关法》")
    article: str = Field(min_length=1, max_length=100, description="e.g. 第三十二条 / Art. 32")


class Capacity(CleanModel):
    """The Committee's capacity to take on one power (承接能力, Art. 4)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    staff: int = Field(ge=0, le=10_000, description="Staff assigned to the function.")
    qualified_personnel: int = Field(
        ge=0, le=10_000, description="Of them, holding the qualification the power needs (e.g. law-enforcement)."
    )
    systems_ready: bool = Field(description="Case-handling and information systems are ready for the function.")


def capacity_shortfalls(kind: PowerKind, capacity: Capacity) -> list[str]:
    """What keeps the Committee from taking on a power of ``kind`` (empty: the capacity is sufficient)."""
    shortfalls: list[str] = []
    if capacity.staff == 0:
        shortfalls.append("no staff is assigned")
    if capacity.qualified_personnel > capacity.staff:
        shortfalls.append(
            f"{capacity.qualified_personnel} qualified personnel cannot exceed the {capacity.staff} staff assigned"
        )
    needed = MIN_LAW_ENFORCEMENT_OFFICERS if kind in (PowerKind.penalty, PowerKind.inspection) else 1
    if capacity.qualified_personnel < needed:
        shortfalls.append(
            f"a {kind.value} power needs at least {needed} qualified personnel, {capacity.qualified_personnel} given"
            + (" (Administrative Penalty Law Art. 42: at least two law-enforcement officers)" if needed > 1 else "")
        )
    if not capacity.systems_ready:
        shortfalls.append("the systems are not ready")
    return shortfalls


class FunctionItem(CleanModel):
    """One management or service function of the catalogue, and the power it rests on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="The item's code in the catalogue.")
    name: str = Field(min_length=1, max_length=300)
    kind: PowerKind
    mode: DelegationMode
    legal_source: LegalSource
    granting_authority: GrantingAuthority
    capacity: Capacity

    @property
    def capacity_shortfalls(self) -> list[str]:
        return capacity_shortfalls(self.kind, self.capacity)

    def published(self) -> dict[str, str]:
        """What the public notice says of the item (Art. 4, Art. 18); capacity details stay internal."""
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind.value,
            "mode": self.mode.value,
            "granting_authority": self.granting_authority.value,
            "legal_source": f"{self.legal_source.law} {self.legal_source.article}",
        }


EXAMPLE_PROPOSAL: dict[str, object] = {
    "proposing_unit": "阿拉山口综合保税区管理委员会",
    "need": "Enterprises in the zone wait for city departments on routine permits; the Committee's one window "
    "handles them in one place (Art. 19).",
    "items": [
        {
            "code": "ALSK-XK-001",
            "name": "临时占用城市道路许可 Temporary occupation of urban roads",
            "kind": "licensing",
            "mode": "entrust",
            "legal_source": {"law": "《城市道路管理条例》", "article": "第三十一条"},
            "granting_authority": "alashankou_city_government",
            "capacity": {"staff": 3, "qualified_personnel": 2, "systems_ready": True},
        },
        {
            "code": "ALSK-JC-001",
            "name": "安全生产监督检查 Work-safety inspection",
            "kind": "inspection",
            "mode": "entrust",
            "legal_source": {"law": "《中华人民共和国安全生产法》", "article": "第六十五条"},
            "granting_authority": "alashankou_city_government",
            "capacity": {"staff": 4, "qualified_personnel": 4, "systems_ready": True},
        },
    ],
    "committee": ["committee-member-a", "committee-member-b", "committee-member-c"],
    "effective_date": None,
    "attachments": [
        {"uri": "s3://docs/capacity-assessment.pdf", "sha256": "b" * 64, "size": 524288, "name": "承接能力评估报告"}
    ],
}
"""A valid proposal: shown in the OpenAPI schema, used by `approvals demo` and the tests."""


class PowerCatalogueProposal(CleanModel):
    """The Committee's proposed catalogue of the functions it will exercise under delegated powers (Art. 4)."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [EXAMPLE_PROPOSAL]})

    proposing_unit: str = Field("阿拉山口综合保税区管理委员会", min_length=1, max_length=200)
    need: str = Field(min_length=1, max_length=10_000, description="The actual need for the powers (Art. 4).")
    items: list[FunctionItem] = Field(min_length=1, max_length=200)
    committee: list[UserId] = Field(
        min_length=3,
        max_length=50,
        description="User ids of the granting government's executive-meeting members who vote on the catalogue "
        "(supplied by the service).",
    )
    effective_date: date | None = Field(
        None, description="When the catalogue takes effect once approved and published; a future date is allowed."
    )
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _coherent(self) -> PowerCatalogueProposal:
        codes = [item.code for item in self.items]
        repeated = sorted({code for code in codes if codes.count(code) > 1})
        if repeated:
            raise ValueError(f"item codes {repeated} are listed more than once; each function appears once")
        insufficient = [
            f"item {item.code} ({item.name}): {'; '.join(item.capacity_shortfalls)}"
            for item in self.items
            if item.capacity_shortfalls
        ]
        if insufficient:
            raise ValueError(
                "the Committee's capacity to take on these powers is insufficient (Art. 4 承接能力), so they cannot "
                "be proposed: " + " | ".join(insufficient)
            )
        members = self.committee
        twice = sorted({member for member in members if members.count(member) > 1})
        if twice:
            raise ValueError(f"committee: members {twice} are listed more than once")
        if self.effective_date is not None and self.effective_date < REGULATION_IN_FORCE:
            raise ValueError(
                f"effective_date {self.effective_date} precedes {REGULATION_IN_FORCE}, when the regulation came "
                "into force (Art. 30)"
            )
        return self

    @property
    def granting_authorities(self) -> list[str]:
        return sorted({item.granting_authority.value for item in self.items})
