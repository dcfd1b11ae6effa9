"""Rules on time: a minute counted twice, and timed minutes beyond the visit's total time."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

from plugin.domain import Service, Severity
from plugin.rules.base import Issue, hhmm, rule
from plugin.rules.context import Context


def overlap_minutes(a: Service, b: Service) -> int:
    """Whole minutes two half-open periods [start, end) share (0 when either is unknown)."""
    if not (a.start and a.end and b.start and b.end):
        return 0
    shared = (min(a.end, b.end) - max(a.start, b.start)).total_seconds()
    return int(shared // 60) if shared > 0 else 0


def _timed(ctx: Context) -> list[Service]:
    return [s for s in ctx.visit.services if s.code in ctx.policy.timed and s.start and s.end]


def _describe(a: Service, b: Service, shared: int) -> str:
    return (
        f"{a.code} ({hhmm(a.start)}-{hhmm(a.end)}) and {b.code} ({hhmm(b.start)}-{hhmm(b.end)}) "
        f"overlap by {shared} minute{'s' if shared != 1 else ''}"
    )


@rule("minutes-overlap", Severity.ERROR, "CMS Claims Processing Manual ch.5 §20.2")
def minutes_overlap(ctx: Context) -> Iterator[Issue]:
    """Two timed interventions' periods overlap, so a minute is counted twice.

    Timed codes are direct one-on-one time; each minute belongs to exactly one code. Periods
    are half-open: back-to-back interventions do not overlap.
    Source: CMS Claims Processing Manual ch.5 §20.2 (timed minutes are the time the patient is
    treated one-on-one).
    """
    for a, b in combinations(_timed(ctx), 2):
        shared = overlap_minutes(a, b)
        if shared:
            yield Issue(
                code=a.code,
                message=f"{_describe(a, b, shared)}: a minute counted twice",
                fix="Correct the start and end times so each minute is counted for one code",
                evidence=(a.ref, b.ref),
            )


def _against(ctx: Context, codes: frozenset[str], what: str, fix: str) -> Iterator[Issue]:
    others = [s for s in ctx.visit.services if s.code in codes and s.start and s.end]
    for timed in _timed(ctx):
        if timed.code in codes:
            continue
        for other in others:
            shared = overlap_minutes(timed, other)
            if shared:
                yield Issue(
                    code=timed.code,
                    message=f"{_describe(timed, other, shared)}: one-on-one minutes counted "
                    f"during {what}",
                    fix=fix,
                    evidence=(timed.ref, other.ref),
                )


@rule("group-overlap", Severity.ERROR, "CMS Benefit Policy Manual ch.15 §230.1; Pub. 100-04 ch.5")
def group_overlap(ctx: Context) -> Iterator[Issue]:
    """A timed one-on-one code overlaps group therapy (97150).

    Group therapy is constant attendance without one-on-one contact; the same minutes cannot
    also be one-on-one. Source: CMS Benefit Policy Manual ch.15 §230.1 (group therapy) and
    Pub. 100-04 ch.5 ('only 97150 is reported' for concurrent treatment).
    """
    yield from _against(
        ctx,
        ctx.policy.group,
        "group therapy",
        "Split the times: one-on-one minutes must fall outside the group session",
    )


@rule("untimed-overlap", Severity.ERROR, "CMS Medicare PT FAQ on supervised modalities; ch.5 §20.2")
def untimed_overlap(ctx: Context) -> Iterator[Issue]:
    """A timed code overlaps an evaluation, a supervised modality or unattended e-stim.

    Time spent attending a supervised modality (97010-97028, G0283) or an evaluation
    (97161-97172) cannot also be counted for a timed code.
    Source: CMS Medicare PT FAQ on supervised modalities (quoted in billing-rules.md §1a) and
    Pub. 100-04 ch.5 §20.2.
    """
    yield from _against(
        ctx,
        ctx.policy.untimed_exclusive,
        "an untimed service",
        "Count the timed minutes outside the evaluation or modality time",
    )


@rule("total-time-mismatch", Severity.ERROR, "CMS Benefit Policy Manual ch.15 §220.3 E")
def total_time_mismatch(ctx: Context) -> Iterator[Issue]:
    """Timed minutes add up to more than the visit's documented total treatment time.

    Total treatment time includes timed and untimed minutes, so the timed minutes alone can
    never exceed it. Source: CMS Benefit Policy Manual ch.15 §220.3 E (total timed code
    minutes and total treatment time must both be documented and consistent).
    """
    total = ctx.visit.total_minutes
    timed = sum(ctx.timed_minutes.values())
    if total is not None and timed > total:
        yield Issue(
            code=None,
            message=f"{timed} timed minutes documented but total treatment time is {total} minutes",
            fix="Correct the total treatment time or the minutes of the timed interventions",
            evidence=(ctx.visit.encounter,),
        )
