"""The Committee's catalogue of functions in force on a date (Art. 3, Art. 4), folded from the audit log.

Any authenticated caller may read it: the catalogue is public law, published once approved (Art. 4, Art. 18),
and its notices carry nothing personal (``workflows.power_adjustment.DISCLOSURE_RULES``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS
from approvals.audit.catalogue import read_catalogue
from schemas.catalogue import CatalogueAnswer

router = APIRouter(prefix="/v1", tags=["catalogue"], responses=ERRORS)


@router.get(
    "/catalogue",
    summary="The catalogue of functions in force on a date, and what changed since another (Art. 3, Art. 4)",
    description="某日施行的管委会管理和服务职能目录（授权或委托、授权机关、法律依据、施行日期、列入该职能的办件和公布记录），"
    "以及与另一日相比新增、撤销、变更的职能及其办件。Folded from the recorded events of the power-adjustment cases "
    "and their adjustment child cases; dates are local dates in UTC+8.",
)
async def catalogue(
    principal: CurrentPrincipal,
    service: Service,
    as_of: Annotated[date, Query(description="Local date (UTC+8), YYYY-MM-DD: the functions in force that day.")],
    compare_to: Annotated[
        date | None,
        Query(description="Another local date, YYYY-MM-DD: what was added, withdrawn or changed between the two."),
    ] = None,
) -> CatalogueAnswer:
    return await read_catalogue(service.pool, as_of, compare_to)
