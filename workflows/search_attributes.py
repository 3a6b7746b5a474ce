"""Typed search attributes the engine keeps current on every case (registered by `approvals dev`)."""

from temporalio.common import SearchAttributeKey

CASE_TYPE = SearchAttributeKey.for_keyword("CaseType")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
BUSINESS_KEY = SearchAttributeKey.for_keyword("BusinessKey")

ALL = (CASE_TYPE, CASE_STATUS, CASE_STAGE, BUSINESS_KEY)
