"""What a disclosure (Art. 18) may say, and by when: pure rules over a ``DisclosureNotice``.

Art. 18 asks for information published promptly and accurately; the Regulations on Open Government
Information (政府信息公开条例) Art. 15 forbid publishing commercial secrets and personal privacy that would harm a
third party, and administrative licensing decisions are published within 7 working days of the decision
(行政许可信息“双公示”). A refusal is published without the party: it is no credit information about them, so
the enterprise is neither named nor identified by its credit code.

Each process declares, once, which keys of its notice's subject are personal data, commercial secrets, or
identify the party; ``redact`` applies them and the notice lists what it withheld and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.case import CaseStatus
from schemas.notifications import DisclosureNotice

PUBLICATION_WORKING_DAYS = 7
"""A decision is published within 7 working days of being made (行政许可决定“双公示”, Art. 18: promptly)."""

PERSONAL_DATA = "personal data (个人信息): PIPL Art. 25; Regulations on Open Government Information Art. 15"
COMMERCIAL_SECRET = "commercial secret (商业秘密): Regulations on Open Government Information Art. 15"
PARTY_OF_A_REFUSAL = "identifies the party of a refusal (不予许可), which is not credit information about it"


@dataclass(frozen=True)
class DisclosureRules:
    """How one process publishes its decisions: the deadline, and which subject keys never go out."""

    refusal_title: str
    """Replaces the case title (which names the party) in the notice of a refusal."""
    within_working_days: int = PUBLICATION_WORKING_DAYS
    remind_before_working_days: int = 2
    escalate_to_role: str = "supervisor"
    personal_data: tuple[str, ...] = ()
    commercial_secrets: tuple[str, ...] = ()
    party: tuple[str, ...] = ()
    """Keys that identify the party: published with a grant, withheld from a refusal."""

    def withheld(self, decision: str) -> dict[str, str]:
        """Every key withheld from a notice of ``decision``, with the reason."""
        reasons = {key: PERSONAL_DATA for key in self.personal_data}
        reasons.update({key: COMMERCIAL_SECRET for key in self.commercial_secrets})
        if decision == CaseStatus.rejected.value:
            reasons.update({key: PARTY_OF_A_REFUSAL for key in self.party if key not in reasons})
        return reasons


def redact(notice: DisclosureNotice, rules: DisclosureRules) -> DisclosureNotice:
    """The notice as it may be published: withheld keys removed from the subject and listed with their reason;
    a refusal titled without the party."""
    reasons = rules.withheld(notice.decision)
    withheld = {key: reason for key, reason in reasons.items() if key in notice.subject}
    subject = {key: value for key, value in notice.subject.items() if key not in reasons}
    refused = notice.decision == CaseStatus.rejected.value
    return notice.model_copy(
        update={
            "subject": subject,
            "withheld": withheld,
            "title": rules.refusal_title if refused else notice.title,
        }
    )
