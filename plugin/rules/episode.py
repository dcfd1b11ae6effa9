"""Rules on the episode of care: a certified plan of care covering the date of service, and a
clinician's progress report at least every 10 treatment days (contract §2b, "The episode").

Either failure denies the whole visit, so they come first in what an auditor cites. They run
only for payers that require them (Medicare, and those the policy data names).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from plugin.domain import Episode, PlanOfCare, Severity, Visit
from plugin.policy.model import Policy
from plugin.rules.base import Issue, rule, whole_lines
from plugin.rules.context import Context

CERT = "42 CFR 424.24(c); CMS Benefit Policy Manual ch.15 §220.1.3"
REPORT = "CMS Benefit Policy Manual ch.15 §220.3 D"


def certified_end(plan: PlanOfCare, policy: Policy) -> date | None:
    """The last day a plan's certification covers: its period end, at most 90 calendar days
    from its start ('the duration of the plan of care, or 90 calendar days from the date of the
    initial treatment, whichever is less')."""
    if plan.start is None:
        return plan.end
    cap = plan.start + timedelta(days=policy.episode.max_interval_days - 1)
    return min(plan.end, cap) if plan.end else cap


def covering(episode: Episode, day: date, policy: Policy) -> list[PlanOfCare]:
    return [
        p
        for p in episode.plans
        if p.start is not None and p.start <= day <= (certified_end(p, policy) or day)
    ]


def first_treatment(episode: Episode, plan: PlanOfCare) -> date | None:
    """The plan's initial treatment: the evaluation that resulted in the plan, on the plan's
    start date ('The initial treatment includes the evaluation that resulted in the plan',
    BPM ch.15 §220.1.3 B)."""
    return plan.start


def is_certified(episode: Episode, plan: PlanOfCare) -> bool:
    initial = episode.plans and plan is episode.plans[0]
    return plan.certified_on is not None or bool(plan.order_exception and initial)


def _start_of(plan: PlanOfCare) -> date | None:
    return plan.start


def _any_certified(episode: Episode, plans: list[PlanOfCare]) -> bool:
    for plan in plans:
        if is_certified(episode, plan):
            return True
    return False


def episode_start(episode: Episode, day: date, policy: Policy) -> date | None:
    """The first day of the episode: the start of the earliest plan in the unbroken chain of
    plans reaching the visit, else the first treatment day read."""
    chain = [p for p in episode.plans if p.start and p.start <= day]
    if len(chain) > 1:
        chain.sort(key=_start_of)
    start: date | None = None
    reach: date | None = None  # the last day the chain so far covers
    for plan in chain:
        end = certified_end(plan, policy) or plan.start
        if start is None or reach is None or plan.start > reach + timedelta(days=1):
            start, reach = plan.start, end  # a gap: a new episode begins
        else:
            reach = max(reach, end)
    if start is None:
        return episode.treatment_days[0] if episode.treatment_days else None
    return start


@dataclass(frozen=True, slots=True)
class ReportClock:
    """Where the visit falls in the progress-report period (§220.3 D)."""

    day_number: int  # treatment day N since the episode start or the last clinician report
    since: date | None  # the episode start, or the day of the last clinician report
    last_report: str  # "DocumentReference/x" or ""


def report_clock(episode: Episode, day: date, policy: Policy) -> ReportClock | None:
    start = episode_start(episode, day, policy)
    if start is None:
        return None
    writers = policy.episode.report_writers
    reports = [
        r
        for r in episode.reports
        if start <= r.day <= day and (r.role is None or r.role in writers)
    ]
    last = reports[-1] if reports else None
    since = last.day if last else start
    days = [d for d in episode.treatment_days if d <= day and (d > since if last else d >= since)]
    if day not in days and day >= since:
        days.append(day)
    return ReportClock(len(days), since, last.ref if last else "")


def _covering(ctx: Context, episode: Episode) -> list[PlanOfCare]:
    """``covering`` for the visit's day, once per review and episode (two rules ask)."""
    key = ("covering", id(episode))
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = covering(episode, ctx.visit.day, ctx.policy)
    return found


def _applies(ctx: Context) -> bool:
    return ctx.visit.episode_required and ctx.visit.day is not None


@rule("poc-not-certified", Severity.ERROR, CERT, needs=("DocumentReference",))
def poc_not_certified(ctx: Context) -> Iterator[Issue]:
    """The plans of care read leave the date of service uncovered by a certification.

    A physician/NPP must certify the plan (a dated signature) within 30 days of the initial
    treatment, and a certification covers the plan's duration or 90 calendar days, whichever
    is less; treatment beyond it needs a recertified plan. The CY2025 exception certifies an
    initial plan with a signed, dated order and the plan sent to that physician/NPP within 30
    days. A plan still in its first 30 days and not yet signed is pending, not an error; a
    signature dated after the visit still certifies it. No plan read at all is
    episode-unknown, not this. Source: 42 CFR 424.24(c); CMS Benefit Policy Manual ch.15
    §220.1.3 B-D; CY2025 PFS final rule.
    """
    if not _applies(ctx):
        return
    day = ctx.visit.day
    policy = ctx.policy
    for episode in ctx.visit.episodes:
        if not episode.plans or episode.unknown:
            continue  # nothing read, or the certification was not readable: episode-unknown
        plans = _covering(ctx, episode)
        if not plans:
            latest = max(
                (p for p in episode.plans if p.start and p.start <= day),
                key=lambda p: p.start,
                default=None,
            )
            why = (
                f"{latest.ref} was certified through {certified_end(latest, policy)} and no "
                "recertified plan follows"
                if latest
                else f"the {episode.discipline} plans read start after {day}"
            )
            yield Issue(
                code=None,
                message=f"no certified {episode.discipline} plan of care covers {day}: {why}",
                fix="Have the physician/NPP recertify the plan of care (signed and dated) for "
                "an interval that includes this date",
                evidence=tuple(p.ref for p in episode.plans),
                at_risk=whole_lines(ctx.lines),
            )
            continue
        if _any_certified(episode, plans):
            continue
        plan = plans[0]
        begun = first_treatment(episode, plan) or plan.start
        deadline = begun + timedelta(days=policy.episode.certification_days)
        if day <= deadline:
            continue  # pending: still inside the first 30 days
        yield Issue(
            code=None,
            message=f"{plan.ref} ({episode.discipline}) has no physician/NPP certification "
            f"{(day - begun).days} days after the first treatment on {begun} (30 allowed)",
            fix="Send the plan of care to the physician/NPP for a dated signature (a delayed "
            "certification is accepted with the reason), or document the signed order and "
            "the date the plan was sent",
            evidence=(plan.ref,),
            at_risk=whole_lines(ctx.lines),
        )


@rule("poc-certified-late", Severity.WARNING, f"{CERT} D (delayed certification)")
def poc_certified_late(ctx: Context) -> Iterator[Issue]:
    """The plan of care was certified more than 30 days after the first treatment.

    A delayed certification is accepted ('It is not intended that needed therapy be stopped or
    denied when certification is delayed'), but the record should say why it was late and show
    the physician/NPP was involved. Source: CMS Benefit Policy Manual ch.15 §220.1.3 D.
    """
    if not _applies(ctx):
        return
    for episode in ctx.visit.episodes:
        for plan in _covering(ctx, episode):
            begun = first_treatment(episode, plan)
            if plan.certified_on is None or begun is None:
                continue
            late = (plan.certified_on - begun).days
            if late > ctx.policy.episode.certification_days:
                yield Issue(
                    code=None,
                    message=f"{plan.ref} was certified on {plan.certified_on}, {late} days "
                    f"after the first treatment on {begun} (due within 30)",
                    fix="Document why the certification was delayed and the physician/NPP's "
                    "involvement (order, sent plan, discussion)",
                    evidence=(plan.ref, plan.certified_by),
                )


@rule("progress-report-overdue", Severity.ERROR, REPORT, needs=("DocumentReference",))
def progress_report_overdue(ctx: Context) -> Iterator[Issue]:
    """The visit falls on the 11th or later treatment day without a clinician's progress report.

    'The minimum progress report period shall be at least once every 10 treatment days'; the
    first day of the episode counts as day 1 (even an evaluation), two visits on one date are
    one treatment day, a report closes its period (the next treatment day is day 1), and only
    a clinician's report counts: an assistant's does not, nor the generic daily 'Progress note'.
    Source: CMS Benefit Policy Manual ch.15 §220.3 D.
    """
    if not _applies(ctx):
        return
    limit = ctx.policy.episode.progress_report_days
    for episode in ctx.visit.episodes:
        if episode.unknown and not episode.treatment_days:
            continue
        clock = report_clock(episode, ctx.visit.day, ctx.policy)
        if clock is None or clock.day_number <= limit:
            continue
        since = (
            f"the last clinician report on {clock.since}"
            if clock.last_report
            else (f"the episode start on {clock.since}")
        )
        yield Issue(
            code=None,
            message=f"treatment day {clock.day_number} of the {episode.discipline} episode "
            f"since {since}: a progress report was due by day {limit}",
            fix="Have the therapist (not an assistant) write a progress report: progress toward "
            "each goal, plan, and any change to the plan of care",
            evidence=tuple(r.ref for r in episode.reports[-2:]) or (ctx.visit.encounter,),
            at_risk=whole_lines(ctx.lines),
        )


@rule("episode-unknown", Severity.WARNING, f"{CERT}; {REPORT}")
def episode_unknown(ctx: Context) -> Iterator[Issue]:
    """The plan of care or the episode's earlier visits could not be read.

    Certification and progress-report timing were then not checked: never silence, and never
    an error for what was merely not visible (not in the Bundle, or the EHR refused the
    search). The message says which. Source: 42 CFR 424.24(c); CMS Benefit Policy Manual ch.15
    §220.1.3 and §220.3 D.
    """
    if not _applies(ctx):
        return
    if not ctx.visit.episodes:
        yield Issue(
            code=None,
            message="the visit's therapy discipline is unknown, so no plan of care or progress "
            "report timing was checked",
            fix="Add GP/GO/GN to the lines or name the therapist on each service",
            evidence=(ctx.visit.encounter,),
        )
        return
    for episode in ctx.visit.episodes:
        for why in (episode.unknown, episode.history_unknown):
            if why:
                yield Issue(
                    code=None,
                    message=f"{why}; certification and progress-report timing not checked",
                    fix="Check the plan of care and the last progress report in the chart",
                    evidence=(ctx.visit.encounter,),
                )


@dataclass(frozen=True, slots=True)
class EpisodeStatus:
    """What the therapist sees of one discipline's episode before signing (review page, CDS
    card): where the visit falls in the report period, how far the certification reaches, and
    what falls due at the next visit."""

    discipline: str
    day_number: int | None  # treatment day N since the last clinician report (or the start)
    limit: int  # the report period (10 treatment days)
    since_report: bool  # N counts from a clinician report, not the episode start
    since: date | None
    certified_through: date | None  # the last day the certified plan covering the visit covers
    plan: str  # what the plan line says
    warnings: tuple[str, ...]  # due next visit, due now, recertification soon
    unknown: str  # "episode unknown: why", or ""

    @property
    def day_line(self) -> str:
        if self.day_number is None:
            return ""
        start = "the last progress report" if self.since_report else "the episode start"
        when = f" ({self.since})" if self.since else ""
        return (
            f"{self.discipline} treatment day {self.day_number} of {self.limit} since {start}{when}"
        )

    @property
    def lines(self) -> tuple[str, ...]:
        if self.unknown:
            return (self.unknown,)
        return tuple(x for x in (self.day_line, self.plan, *self.warnings) if x)


def episode_status(visit: Visit, policy: Policy) -> tuple[EpisodeStatus, ...]:
    """The episode lines of a visit for the payers that require a plan of care; () otherwise."""
    day = visit.day
    if not visit.episode_required or day is None:
        return ()
    limit = policy.episode.progress_report_days
    if not visit.episodes:
        why = "the visit's therapy discipline is unknown"
        return (
            EpisodeStatus("", None, limit, False, None, None, "", (), f"episode unknown: {why}"),
        )
    found = []
    for episode in visit.episodes:
        unknown = episode.unknown or episode.history_unknown
        if unknown:
            found.append(
                EpisodeStatus(
                    episode.discipline,
                    None,
                    limit,
                    False,
                    None,
                    None,
                    "",
                    (),
                    f"{episode.discipline} episode unknown: {unknown}",
                )
            )
            continue
        clock = report_clock(episode, day, policy)
        warnings = []
        if clock is not None:
            if clock.day_number == limit - 1:
                warnings.append(f"progress report due next visit (day {limit})")
            elif clock.day_number == limit:
                warnings.append(f"progress report due at this visit (day {limit} of {limit})")
            elif clock.day_number > limit:
                warnings.append(f"progress report overdue (day {clock.day_number})")
        plans = covering(episode, day, policy)
        certified = [p for p in plans if is_certified(episode, p)]
        through = max((certified_end(p, policy) or day for p in certified), default=None)
        if through is not None:
            plan = f"plan of care certified through {through}"
            left = (through - day).days
            if left <= policy.episode.recert_warning_days:
                in_days = "today" if left == 0 else f"in {left} day{'' if left == 1 else 's'}"
                warnings.append(f"recertification due by {through} ({in_days})")
        elif plans:
            begun = first_treatment(episode, plans[0]) or plans[0].start or day
            due = begun + timedelta(days=policy.episode.certification_days)
            plan = f"plan of care not yet certified (physician/NPP signature due by {due})"
        else:
            plan = f"no certified plan of care covers {day}"
        found.append(
            EpisodeStatus(
                episode.discipline,
                clock.day_number if clock else None,
                limit,
                bool(clock and clock.last_report),
                clock.since if clock else None,
                through,
                plan,
                tuple(warnings),
                "",
            )
        )
    return tuple(found)
