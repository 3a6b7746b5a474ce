"""A construction project application (Art. 10 review, with Art. 8 land use and Art. 9 safety).

Validated when the case starts, so a bad application is refused with the field at fault before any
workflow exists. Documents travel by reference (URI + SHA-256 + size), never inline.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import ConfigDict, EmailStr, Field, field_validator, model_validator

from schemas.case import AttachmentRef
from schemas.text import CleanModel

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""GB 32100-2015: the 31 characters of a unified social credit code (no I, O, S, V, Z)."""

USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
"""Weight of each of the first 17 characters: 3**i mod 31."""


def uscc_check_character(first17: str) -> str:
    """The 18th character of a unified social credit code (统一社会信用代码), per GB 32100-2015."""
    total = sum(USCC_ALPHABET.index(char) * weight for char, weight in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: str) -> str:
    code = code.strip().upper()
    if len(code) != 18:
        raise ValueError(f"a unified social credit code has 18 characters, this one has {len(code)}")
    wrong = sorted({char for char in code if char not in USCC_ALPHABET})
    if wrong:
        raise ValueError(f"characters {wrong} cannot occur in a unified social credit code (GB 32100-2015)")
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise ValueError(f"check character is {code[17]!r} but GB 32100-2015 gives {expected!r}: the code is mistyped")
    return code


class LandUse(StrEnum):
    """Land-use classes of the territorial spatial plan relevant to the zone."""

    industrial = "industrial"  # 工业用地
    logistics_warehousing = "logistics_warehousing"  # 物流仓储用地
    commercial = "commercial"  # 商业服务业用地
    public_facilities = "public_facilities"  # 公用设施用地
    transport = "transport"  # 交通运输用地


class EnvironmentalImpactCategory(StrEnum):
    """Category of environmental-impact assessment the project needs (建设项目环境影响评价分类)."""

    report = "report"  # 环境影响报告书: significant impact
    report_form = "report_form"  # 环境影响报告表: light impact
    registration_form = "registration_form"  # 环境影响登记表: very small impact


class Contact(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{5,19}$")
    email: EmailStr | None = None


class Enterprise(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    unified_social_credit_code: str
    contact: Contact

    @field_validator("unified_social_credit_code")
    @classmethod
    def _uscc(cls, code: str) -> str:
        return validate_uscc(code)


EXAMPLE_APPLICATION: dict[str, object] = {
    "enterprise": {
        "name": "Alashankou Metals Co.",
        "unified_social_credit_code": "91350100M000100Y43",
        "contact": {"name": "Ma Lin", "phone": "+86 909 555 0101", "email": "ma.lin@example.com"},
    },
    "project_name": "Imported copper concentrate bonded processing line",
    "description": "Bonded processing of imported metal ores (Art. 12), four-storey plant.",
    "industry_code": "C3311",
    "priority_industry": True,
    "total_investment_cny": "120000000.00",
    "fixed_asset_investment_cny": "90000000.00",
    "plot_id": "ALSK-B-07",
    "land_area_m2": "36000",
    "planned_land_use": "industrial",
    "zoned_land_use": "industrial",
    "storeys": 4,
    "floor_area_ratio": "1.60",
    "environmental_impact_category": "report_form",
    "major_hazard_source": False,
    "attachments": [
        {"uri": "s3://docs/feasibility.pdf", "sha256": "a" * 64, "size": 1048576, "name": "可行性研究报告"}
    ],
}
"""A valid application: shown in the OpenAPI schema, used by `approvals demo` and the tests."""


class ProjectApplication(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [EXAMPLE_APPLICATION]})

    enterprise: Enterprise
    project_name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=10_000)
    industry_code: str = Field(
        pattern=r"^[A-T][0-9]{2,4}$", description="GB/T 4754 class, e.g. C3311 (a letter and 2-4 digits)."
    )
    priority_industry: bool = Field(description="An Art. 12 priority industry of the zone.")
    high_tech: bool = Field(False, description="High-value-added, high-tech project (Art. 8 priority for land).")
    total_investment_cny: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    fixed_asset_investment_cny: Decimal = Field(gt=0, max_digits=16, decimal_places=2)
    plot_id: str = Field(min_length=1, max_length=64)
    land_area_m2: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    planned_land_use: LandUse
    zoned_land_use: LandUse = Field(description="The plot's use in the territorial spatial plan.")
    storeys: int = Field(ge=1, le=100)
    floor_area_ratio: Decimal = Field(gt=0, le=20, max_digits=5, decimal_places=2)
    environmental_impact_category: EnvironmentalImpactCategory
    major_hazard_source: bool = Field(description="Involves a major hazard source (Art. 9 safety-risk assessment).")
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _investment(self) -> ProjectApplication:
        if self.fixed_asset_investment_cny > self.total_investment_cny:
            raise ValueError(
                f"fixed_asset_investment_cny ({self.fixed_asset_investment_cny}) exceeds "
                f"total_investment_cny ({self.total_investment_cny})"
            )
        return self

    @property
    def priority(self) -> bool:
        """Flagged in every inbox: Art. 12 industries and Art. 8 high-value, high-tech projects."""
        return self.priority_industry or self.high_tech

    @property
    def changes_land_use(self) -> bool:
        return self.planned_land_use is not self.zoned_land_use
