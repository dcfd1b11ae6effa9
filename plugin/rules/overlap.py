"""Rules on time: a minute counted twice, and timed minutes beyond the visit's total time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from plugin.domain import Service, Severity
from plugin.rules.base import Issue, hhmm, rule
from plugin.rules.context import Context


class Timed(Protocol):
    """Anything with a period: a Service, or the audit's treatment slot."""

    @property
    def start(self) -> datetime | None: ...

    @property
    def end(self) -> datetime | None: ...


def overlap_minutes(a: Timed, b: Timed) -> int:
    """Whole minutes two half-open periods [start, end) share (0 when either is unknown)."""
    if not (a.start and a.end and b.start and b.end):
        return 0
    shared = (min(a.end, b.end) - max(a.start, b.start)).total_seconds()
    return int(shared // 60) if shared > 0 else 0


# One finding per overlapping pair up to this many, then one summary finding; a visit with
# thousands of intervals cannot flood the review or take quadratic time.
MAX_PAIRS = 20


def overlapping_pairs(
    left: Iterable[Service], right: Iterable[Service] | None = None
) -> Iterator[tuple[Service, Service, int]]:
    """Pairs whose periods overlap, by a sweep over start times (O(n log n + pairs)).

    With ``right`` None, pairs within ``left``; else pairs of one from each side.
    """
    tagged = [(s, 0) for s in left if s.start and s.end]
    if right is not None:
        tagged += [(s, 1) for s in right if s.start and s.end]
    tagged.sort(key=lambda item: item[0].start)
    active: list[tuple[Service, int]] = []
    for service, side in tagged:
        active = [(a, sd) for a, sd in active if a.end > service.start]
        for other, other_side in active:
            if right is None or side != other_side:
                shared = overlap_minutes(other, service)
                if shared:
                    yield (
                        (other, service, shared) if other_side <= side else (service, other, shared)
                    )
        active.append((service, side))


def _capped(pairs: Iterator[tuple[Service, Service, int]], make) -> Iterator[Issue]:
    for n, (a, b, shared) in enumerate(pairs):
        if n == MAX_PAIRS:
            yield Issue(
                code=None,
                message=f"more than {MAX_PAIRS} overlapping pairs; the rest are not listed",
                fix="Correct the intervention times; each minute belongs to one code",
            )
            return
        yield make(a, b, shared)


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
    yield from _capped(
        overlapping_pairs(_timed(ctx)),
        lambda a, b, shared: Issue(
            code=a.code,
            message=f"{_describe(a, b, shared)}: a minute counted twice",
            fix="Correct the start and end times so each minute is counted for one code",
            evidence=(a.ref, b.ref),
        ),
    )


def _against(ctx: Context, codes: frozenset[str], what: str, fix: str) -> Iterator[Issue]:
    others = [s for s in ctx.visit.services if s.code in codes and s.start and s.end]
    if not others:
        return
    timed = [s for s in _timed(ctx) if s.code not in codes]
    yield from _capped(
        overlapping_pairs(timed, others),
        lambda t, other, shared: Issue(
            code=t.code,
            message=f"{_describe(t, other, shared)}: one-on-one minutes counted during {what}",
            fix=fix,
            evidence=(t.ref, other.ref),
        ),
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


@rule(
    "untimed-overlap",
    Severity.ERROR,
    "CMS Benefit Policy Manual ch.15 §220.3 C; Medicare PT FAQ on supervised modalities; "
    "NCCI Policy Manual ch.XI",
)
def untimed_overlap(ctx: Context) -> Iterator[Issue]:
    """A timed code overlaps an evaluation or re-evaluation (97161-97172).

    The evaluation is the therapist's own time: "The time spent in evaluation shall not also be
    billed as treatment time ... minutes of evaluation shall not be included in the minutes for
    timed codes". Supervised modalities (97010-97028) and unattended e-stim (G0283) are not
    this rule's: "One or more supervised modalities may be billed in the same 15-minute time
    period with any other CPT code, timed or untimed, requiring constant attendance or direct
    one-on-one patient contact", so a timed service during a hot pack or unattended e-stim is
    no finding and keeps its minutes, while the modality's own minutes, untimed, never count
    as timed minutes. The codes are policy data (codes.toml untimed_exclusive).
    Source: CMS Benefit Policy Manual ch.15 §220.3 C (stored copy, old.bansdoc.gov.bd p.199);
    CMS Medicare PT FAQ quoted by ChiroCode blog 241 (31 Jan 2018); NCCI Policy Manual ch.XI.
    """
    yield from _against(
        ctx,
        ctx.policy.untimed_exclusive,
        "an evaluation",
        "Count the timed minutes outside the evaluation's time",
    )


@rule("total-time-mismatch", Severity.ERROR, "CMS Benefit Policy Manual ch.15 §220.3 E")
def total_time_mismatch(ctx: Context) -> Iterator[Issue]:
    """Timed plus untimed minutes add up to more than the visit's total treatment time.

    'Total treatment time includes the minutes for timed code treatment and untimed code
    treatment', so the two together can never exceed it. Source: CMS Benefit Policy Manual
    ch.15 §220.3 E (total timed code minutes and total treatment time must both be documented
    and consistent).
    """
    total = ctx.visit.total_minutes
    if total is None:
        return
    stated = ctx.visit.stated_timed_minutes
    timed = stated if stated is not None else sum(ctx.timed_minutes.values())
    untimed_seconds = sum(
        s.seconds or 0.0
        for s in ctx.visit.services
        if s.code not in ctx.policy.timed and not s.unqualified_only
    )
    untimed = int(untimed_seconds // 60)
    if timed + untimed > total:
        parts = f"{timed} timed" + (f" + {untimed} untimed" if untimed else "")
        yield Issue(
            code=None,
            message=f"{parts} minutes documented but total treatment time is {total} minutes",
            fix="Correct the total treatment time or the minutes of the interventions",
            evidence=(ctx.visit.encounter,),
        )
