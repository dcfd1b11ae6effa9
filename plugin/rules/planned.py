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
    PlannedRule("poc-not-certified", "error", 13, "date of service outside a certified plan"),
    PlannedRule("progress-report-overdue", "error", 13, "11th treatment day without a report"),
    PlannedRule("poc-certified-late", "warning", 13, "delayed certification"),
    PlannedRule("episode-unknown", "warning", 13, "plan of care or episode history not readable"),
)

PLANNED_BY_ID = {p.id: p for p in PLANNED_RULES}
