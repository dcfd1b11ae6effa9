"""Rule ids the contract names that are not built yet, each with the issue that builds it.

The one place that says which contract rules are still missing: the registry test reads it, so
main stays green while the contract runs ahead of the code, and nobody mistakes a planned rule
for a built one. Remove an id from here in the commit that registers its rule (the test fails
when an id is both planned and registered).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlannedRule:
    id: str
    severity: str  # as the contract table says
    issue: int  # the issue that builds it
    what: str


PLANNED_RULES: tuple[PlannedRule, ...] = (
    PlannedRule(
        "ptp-not-bypassable",
        "error",
        23,
        "59/X{EPSU} on a PTP pair whose modifier indicator is 0",
    ),
    PlannedRule("eval-by-assistant", "error", 23, "an evaluation furnished by a PTA/OTA"),
    PlannedRule(
        "wrong-discipline-code",
        "error",
        23,
        "an evaluation, CQ or CO billed under the other discipline",
    ),
    PlannedRule(
        "untimed-undocumented",
        "error",
        23,
        "an untimed code billed with nothing performed or documented for it",
    ),
    PlannedRule(
        "reevaluation-not-indicated",
        "warning",
        23,
        "a re-evaluation with no new finding, significant change or failure to respond",
    ),
    PlannedRule(
        "kx-not-indicated",
        "warning",
        23,
        "KX appended while the year's allowed amount is under the threshold",
    ),
)

PLANNED_BY_ID = {p.id: p for p in PLANNED_RULES}
