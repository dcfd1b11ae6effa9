"""Rules on the NCCI procedure-to-procedure edits: a bundled pair without 59/X{EPSU}, a modifier
on a pair no modifier can unbundle, and a modifier whose services were not in separate time."""

from __future__ import annotations

from collections.abc import Iterator

from plugin.domain import BilledLine, Severity
from plugin.policy.model import PtpEdit
from plugin.rules.base import Issue, rule, whole_lines
from plugin.rules.context import Context
from plugin.rules.overlap import overlapping_pairs

PTP = "CMS NCCI Policy Manual ch.1; Medicare NCCI PTP edits (practitioner)"


def _same_day_lines(ctx: Context) -> list[BilledLine]:
    day = ctx.visit.day
    return list(ctx.lines) + [
        line for line in ctx.visit.other_lines if day is not None and line.day == day
    ]


def _billed_pairs(ctx: Context) -> list[tuple[PtpEdit, BilledLine]]:
    """Each PTP edit in force on the date whose two codes were billed that day, with each of
    this visit's lines of its column-two code (the code the edit denies); once per review (both
    rules on the pairs read it)."""
    found = ctx.memo.get("ptp-pairs")
    if found is None:
        codes = {line.code for line in _same_day_lines(ctx)}
        edits = ctx.policy.ptp_edits_for(ctx.visit.day)
        pairs = sorted((one, two) for one in codes for two in codes if (one, two) in edits)
        found = ctx.memo["ptp-pairs"] = [
            (edits[col1, col2], line) for col1, col2 in pairs for line in ctx.lines_of(col2)
        ]
    return found


@rule("missing-distinct-modifier", Severity.ERROR, PTP, billing=True)
def missing_distinct_modifier(ctx: Context) -> Iterator[Issue]:
    """A code pair that the PTP policy data bundles is billed on one date without 59/X{EPSU}.

    Under an NCCI procedure-to-procedure edit in force on the date, the column-two code is
    denied beside the column-one code unless a distinct-service modifier is appended and the
    edit allows one (modifier indicator 1). A line that carries the modifier on a pair whose
    indicator is 0 is ptp-not-bypassable's finding, not this one.
    Source: CMS NCCI PTP edits (quarterly practitioner file); APTA 'NCCI Code Edits'.
    """
    distinct = ctx.policy.distinct_modifiers
    for edit, line in _billed_pairs(ctx):
        if line.modifiers & distinct:
            continue
        col1, col2 = edit.column1, edit.column2
        reason = (
            "no modifier can unbundle it (modifier indicator 0)"
            if edit.modifier_indicator == "0"
            else "without 59 or X{EPSU}"
        )
        yield Issue(
            code=col2,
            message=f"{col2} billed beside {col1} on {ctx.visit.day}, an NCCI pair "
            f"(column 1 {col1}), {reason}",
            fix=f"If {col2} was a separate session from {col1}, add 59 or XS and document it; "
            f"otherwise remove {col2}"
            if edit.modifier_indicator != "0"
            else f"Remove {col2}: it is not paid beside {col1} on the same date",
            evidence=(line.ref,),
            at_risk=whole_lines([line]),
        )


@rule(
    "ptp-not-bypassable",
    Severity.ERROR,
    "CMS NCCI Policy Manual ch.1 (modifier indicator 0); Medicare NCCI PTP edits (practitioner)",
    billing=True,
)
def ptp_not_bypassable(ctx: Context) -> Iterator[Issue]:
    """59/X{EPSU} is appended on a pair whose PTP modifier indicator is 0.

    An NCCI edit with modifier indicator 0 is never unbundled: "A (0) indicates that there are
    no circumstances in which a modifier would be appropriate. The services represented by the
    code combination will not be paid separately" (the CCI file layout's modifier flag). The
    column-two line is denied whatever modifier it carries, so appending one to it is itself a
    finding auditors cite (a modifier used to bypass an edit that allows none).
    Source: CMS NCCI PTP edits, modifier indicator (CCI file layout, medical-coding.net copy;
    APTA 'NCCI Code Edits: Your Questions Answered', 16 Jan 2020).
    """
    distinct = ctx.policy.distinct_modifiers
    for edit, line in _billed_pairs(ctx):
        claimed = sorted(line.modifiers & distinct)
        if edit.modifier_indicator != "0" or not claimed:
            continue
        col1, col2 = edit.column1, edit.column2
        yield Issue(
            code=col2,
            message=f"{col2} carries {'/'.join(claimed)} beside {col1} on {ctx.visit.day}, but "
            f"the NCCI pair (column 1 {col1}) has modifier indicator 0: no modifier makes "
            "both payable",
            fix=f"Remove {col2} (and its {'/'.join(claimed)}): it is not paid beside {col1} on "
            "the same date whatever the modifier",
            evidence=(line.ref,),
            at_risk=whole_lines([line]),
        )


@rule(
    "unsupported-distinct-modifier",
    Severity.ERROR,
    "CMS NCCI Policy Manual ch.11 and ch.1 §E; CMS 'Proper Use of Modifiers 59 & -X{EPSU}' "
    "(SE1418), example 9",
    billing=True,
)
def unsupported_distinct_modifier(ctx: Context) -> Iterator[Issue]:
    """59/XS is claimed but the two services' minutes overlap.

    For therapy pairs a distinct-service modifier means separate and distinct time intervals:
    the minutes of one code may not overlap the other's. The blocks may alternate: "the therapy
    time blocks may be split. For example, manual therapy might be performed for 10 minutes,
    followed by 15 minutes of therapeutic activities, followed by another 5 minutes of manual
    therapy. CPT code 97530 should not be reported and modifier 59 should not be used if the two
    procedures are performed during the same time block." Serving the same goal is not by
    itself a reason to refuse the modifier, and separate goals alone do not make it right.
    Source: CMS 'Proper Use of Modifiers 59 & -XE -XP -XS -XU' (SE1418, March 2020 revision),
    example 9, as quoted by WebPT; CMS NCCI Policy Manual ch.11 (separate time intervals).
    """
    for line in ctx.lines:
        claimed = sorted(line.modifiers & ctx.policy.session_modifiers)
        if not claimed:
            continue
        mine = ctx.services_by_code.get(line.code, [])
        for other_code, others in sorted(ctx.services_by_code.items()):
            if other_code == line.code or other_code not in ctx.billed_units:
                continue
            shared = next((m for _, _, m in overlapping_pairs(mine, others)), 0)
            if not shared:
                continue
            yield Issue(
                code=line.code,
                message=f"{line.code} carries {'/'.join(claimed)} beside {other_code} but "
                f"their minutes overlap by {shared}",
                fix=f"Document {line.code} and {other_code} in separate time blocks, "
                f"or remove {'/'.join(claimed)}",
                evidence=(line.ref, *(s.ref for s in mine + others)),
                at_risk=whole_lines([line]),
            )
