"""The defects ``unitguard synth`` injects, one per rule: each turns the clean baseline visit
(CMS worked example 1: 97112 09:00-09:24 + 97110 09:24-09:47, billed 2 + 1 with GP, everything
documented, total time 60 minutes) into a visit on which exactly its own rule fires. Each stays
inside the visit's hour (the therapist's next patient starts an hour later) and within its total
treatment time, so no other rule is woken.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from plugin.synthetic.resources import HCPCS
from plugin.synthetic.visit import VisitBuilder


def _units(b: VisitBuilder) -> None:
    b.claim_items[0]["quantity"]["value"] = 4


def _no_gp(b: VisitBuilder) -> None:
    b.claim_items[0]["modifier"] = []


def _overlap(b: VisitBuilder) -> None:
    proc = next(
        e["resource"]
        for e in b.entries
        if e["resource"]["resourceType"] == "Procedure"
        and e["resource"]["code"]["coding"][0]["code"] == "97110"
    )
    # 97110 starts inside 97112's minutes and runs on: 10 minutes charted twice, while the
    # minutes counted once (24 + 23) and so the units stay as billed: only its rule fires.
    proc["performedPeriod"] = {"start": b.at("09:14"), "end": b.at("09:47")}


def _unsigned(b: VisitBuilder) -> None:
    for e in b.entries:
        if e["resource"]["resourceType"] == "DocumentReference":
            e["resource"]["docStatus"] = "preliminary"
            e["resource"].pop("authenticator", None)


def _total_time(b: VisitBuilder) -> None:
    b.encounter["length"]["value"] = 30


def _assistant(b: VisitBuilder) -> None:
    """97110 furnished by the PTA alone, billed without CQ."""
    for e in b.entries:
        resource = e["resource"]
        if resource["resourceType"] == "Procedure" and resource["code"]["coding"][0]["code"] == (
            "97110"
        ):
            resource["performer"] = [{"actor": {"reference": "Practitioner/pta"}}]


def _kx(b: VisitBuilder) -> None:
    """Earlier claims this year (their encounters before the export), which the payer allowed
    $2,600 for (a ClaimResponse), pass the KX threshold: the running total counts allowed
    amounts, not charges."""
    earlier = f"{b.day[:4]}-01-02"
    b.line("97112", 40, amount=4000.0, encounter="enc-0", day=earlier, allowed=2600.0)


def _no_total_time(b: VisitBuilder) -> None:
    b.encounter.pop("length", None)


def _unmeasurable_goals(b: VisitBuilder) -> None:
    for e in b.entries:
        if e["resource"]["resourceType"] == "Goal":
            e["resource"].pop("target", None)


def _no_measure_today(b: VisitBuilder) -> None:
    b.entries = [
        e
        for e in b.entries
        if not (e["resource"]["resourceType"] == "Observation" and "encounter" in e["resource"])
    ]


def _wrong_discipline(b: VisitBuilder) -> None:
    """The PT's 97112 billed with GO (occupational therapy). The patient also has a certified
    OT plan of care, so the OT episode is known and only the modifier is wrong."""
    b.claim_items[0]["modifier"] = [{"coding": [{"code": "GO"}]}]
    b.plan_of_care(discipline="Occupational therapy", plan_id="poc-ot")


def _under_billed(b: VisitBuilder) -> None:
    b.claim_items[0]["quantity"]["value"] = 1


def _review_threshold(b: VisitBuilder) -> None:
    """Earlier claims (allowed $2,950, KX) plus this visit pass $3,000; every line carries KX."""
    for item in b.claim_items:
        item["modifier"].append({"coding": [{"code": "KX"}]})
    b.line(
        "97112",
        40,
        mods=("GP", "KX"),
        amount=4500.0,
        encounter="enc-0",
        day=f"{b.day[:4]}-01-02",
        allowed=2950.0,
    )


def _certification_lapsed(b: VisitBuilder) -> None:
    """The plan of care began 45 days before the visit and no physician/NPP ever signed it."""
    day = datetime.fromisoformat(b.day).date()
    for e in b.entries:
        plan = e["resource"]
        if plan["resourceType"] == "CarePlan":
            plan.pop("contributor", None)
            plan.pop("created", None)
            start = day - timedelta(days=45)
            plan["period"] = {
                "start": start.isoformat(),
                "end": (day + timedelta(days=30)).isoformat(),
            }


def _report_overdue(b: VisitBuilder) -> None:
    """Ten earlier treatment days of the same episode (written by ``generate`` as clean
    visits of their own) and no progress report: this visit is the 11th treatment day. The
    plan of care, certified on its first day, starts with the first of them."""
    day = datetime.fromisoformat(b.day).date()
    for e in b.entries:
        plan = e["resource"]
        if plan["resourceType"] == "CarePlan":
            start = (day - timedelta(days=max(HISTORY["progress-report-overdue"]))).isoformat()
            plan["period"] = {"start": start, "end": (day + timedelta(days=40)).isoformat()}
            plan["created"] = start


# Earlier treatment days a defect needs: (days before the visit) for each earlier clean visit.
HISTORY = {"progress-report-overdue": tuple(range(2, 22, 2))}


def _concurrent(b: VisitBuilder) -> None:
    """Scheduled into another patient's slot of the same therapist (see ``generate``)."""


def _procedure(b: VisitBuilder, code: str) -> dict:
    return next(
        e["resource"]
        for e in b.entries
        if e["resource"]["resourceType"] == "Procedure"
        and e["resource"]["code"]["coding"][0]["code"] == code
    )


def _ptp_not_bypassable(b: VisitBuilder) -> None:
    """A PT evaluation (97163) 09:00-09:20, then 97112 09:20-09:44 and a physical performance
    test (97750) 09:44-09:59 in place of 97110, 59 on 97750: the pair 97163/97750 has modifier
    indicator 0. 39 timed minutes, 3 units billed (97112 x2, 97750 x1); 59 minutes in all."""
    exercise = _procedure(b, "97110")
    b.entries = [e for e in b.entries if e["resource"] is not exercise]
    b.claim_items = [
        i for i in b.claim_items if i["productOrService"]["coding"][0]["code"] != "97110"
    ]
    _procedure(b, "97112")["performedPeriod"] = {"start": b.at("09:20"), "end": b.at("09:44")}
    b.proc("97163", "09:00", "09:20", goals=(), note="PT evaluation: history, tests, plan.")
    b.proc("97750", "09:44", "09:59", goals=(), note="Physical performance test: 6MWT, TUG.")
    b.line("97163", 1)
    b.line("97750", 1, mods=("GP", "59"))


def _evaluation_after(
    b: VisitBuilder, code: str, performer: str, mods: tuple[str, ...], note: str
) -> None:
    """An untimed evaluation code 09:47-09:57, after the clean visit's 97110 (57 minutes)."""
    b.proc(code, "09:47", "09:57", performer=performer, goals=(), note=note)
    b.line(code, 1, mods=mods)


def _eval_by_assistant(b: VisitBuilder) -> None:
    """The PTA alone furnished a PT evaluation (97161), billed GP CQ."""
    _evaluation_after(b, "97161", "PTA", ("GP", "CQ"), "PT evaluation completed.")


def _wrong_discipline_code(b: VisitBuilder) -> None:
    """The PT billed the OT evaluation code 97165 under GP."""
    _evaluation_after(b, "97165", "PT", ("GP",), "Evaluation: history, tests and measures.")


def _reevaluation_routine(b: VisitBuilder) -> None:
    """A PT re-evaluation (97164) documented as routine, with no indication."""
    note = "Routine 30-day re-evaluation per clinic policy. Berg 44/56."
    _evaluation_after(b, "97164", "PT", ("GP",), note)


def _untimed_undocumented(b: VisitBuilder) -> None:
    """G0283 billed, with no Procedure and no note naming it."""
    item = b.line("G0283", 1)
    item["productOrService"]["coding"][0]["system"] = HCPCS


def _kx_not_indicated(b: VisitBuilder) -> None:
    """KX on every line of a patient with no other therapy this year."""
    for item in b.claim_items:
        item["modifier"].append({"coding": [{"code": "KX"}]})


DEFECTS: dict[str, Callable[[VisitBuilder], None]] = {
    "units-exceed-time": _units,
    "missing-discipline-modifier": _no_gp,
    "minutes-overlap": _overlap,
    "doc-unsigned": _unsigned,
    "total-time-mismatch": _total_time,
    "missing-assistant-modifier": _assistant,
    "missing-kx": _kx,
    "concurrent-therapy-overlap": _concurrent,
    "poc-not-certified": _certification_lapsed,
    "progress-report-overdue": _report_overdue,
    "doc-no-total-time": _no_total_time,
    "doc-no-functional-goal": _unmeasurable_goals,
    "doc-no-objective-measure": _no_measure_today,
    "discipline-modifier-mismatch": _wrong_discipline,
    "units-under-billed": _under_billed,
    "targeted-review-threshold": _review_threshold,
    "ptp-not-bypassable": _ptp_not_bypassable,
    "eval-by-assistant": _eval_by_assistant,
    "wrong-discipline-code": _wrong_discipline_code,
    "untimed-undocumented": _untimed_undocumented,
    "reevaluation-not-indicated": _reevaluation_routine,
    "kx-not-indicated": _kx_not_indicated,
}
