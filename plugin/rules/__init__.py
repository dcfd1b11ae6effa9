"""The rule registry: an explicit, ordered list (no import-time discovery).

Retired rule ids are never reused; list them here in a comment when one is retired.
"""

from plugin.rules import (
    coverage,
    documentation,
    episode,
    kx,
    modifiers,
    narrative,
    overlap,
    reading,
    units,
)
from plugin.rules.base import Issue, Rule
from plugin.rules.engine import Report, review

ALL_RULES: tuple[Rule, ...] = (
    episode.poc_not_certified,
    episode.progress_report_overdue,
    episode.poc_certified_late,
    episode.episode_unknown,
    units.units_exceed_time,
    units.units_under_billed,
    units.under_8_minutes,
    units.missing_minutes,
    units.daily_unit_cap,
    coverage.untimed_units_exceed,
    coverage.code_not_covered,
    coverage.unqualified_performer,
    overlap.minutes_overlap,
    overlap.group_overlap,
    overlap.untimed_overlap,
    overlap.total_time_mismatch,
    modifiers.missing_discipline_modifier,
    modifiers.discipline_modifier_mismatch,
    modifiers.missing_assistant_modifier,
    modifiers.missing_distinct_modifier,
    modifiers.unsupported_distinct_modifier,
    kx.missing_kx,
    kx.kx_threshold_unknown,
    kx.targeted_review_threshold,
    documentation.doc_no_deficit,
    documentation.doc_no_skilled_intervention,
    documentation.doc_no_patient_response,
    documentation.doc_no_functional_goal,
    documentation.doc_no_objective_measure,
    documentation.doc_no_progress,
    documentation.doc_unsigned,
    documentation.doc_no_total_time,
    narrative.supervision_only,
    narrative.code_selection,
    narrative.cloned_note,
    # last: it names the checks the rules before it could not decide (contract §2)
    reading.reading_incomplete,
)

# Rules over many visits at once (the audit); they take treatment slots, not one visit.
from plugin.rules.batch import BATCH_RULES  # noqa: E402

EVERY_RULE: tuple[Rule, ...] = ALL_RULES + BATCH_RULES
RULES_BY_ID = {r.id: r for r in EVERY_RULE}


def get_rule(rule_id: str) -> Rule:
    return RULES_BY_ID[rule_id]


__all__ = [
    "ALL_RULES",
    "BATCH_RULES",
    "EVERY_RULE",
    "Issue",
    "Report",
    "Rule",
    "get_rule",
    "review",
]
