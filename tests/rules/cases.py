"""Pass and fail cases for every rule: each case builds a Bundle and says whether the rule fires.

A case is (name, build) where build() returns (bundle, review options). The registry test
checks every registered rule has at least one 'pass' and one 'fail' case here.
"""

from __future__ import annotations

from plugin.ehr.reader import reading_note
from plugin.fhir.unread import with_ehr
from plugin.synthetic.resources import HCPCS
from plugin.synthetic.visit import CLEAN_NOTE, TEN_TREATMENT_DAYS, VisitBuilder, clean_visit


def _b(builder: VisitBuilder, **options):
    return builder.bundle(), options


def clean(**options):
    return _b(clean_visit(), **options)


# --- units ---------------------------------------------------------------------------------
def exceed_single():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 3)
    return _b(b)


def tie_billed_both_two():
    """CMS Ex 2: 20/20 minutes, 2 + 2 billed: 'Do not bill 3 units for either'; 4 > 3."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20")
    b.proc("97110", "09:20", "09:40", note="Balance exercises with verbal cues; tolerated.")
    b.line("97112", 2)
    b.line("97110", 2)
    return _b(b)


def under_billed():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:38")
    b.line("97112", 1)
    return _b(b)


def six_minutes_alone():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:06")
    b.line("97112", 1)
    return _b(b)


def seven_plus_seven_pooled():
    """7-minutes-or-less rule: 7 + 7 = 14 total, one unit for either code."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:07")
    b.proc("97140", "09:07", "09:14", goals=(), note="Manual therapy, soft tissue mobilization.")
    b.line("97112", 1)
    return _b(b)


def no_minutes():
    b = VisitBuilder()
    b.proc("97110", "09:00", "09:20", note="Strength program 3x10 with verbal cues; tolerated.")
    b.line("97112", 2)
    b.line("97110", 1)
    return _b(b)


def procedure_without_period():
    b = VisitBuilder()
    b.proc("97112", None, None)
    b.line("97112", 1)
    return _b(b)


def five_units_97112():
    b = VisitBuilder(length=90)
    b.proc("97112", "09:00", "10:15")
    b.line("97112", 5)
    return _b(b)


def four_units_97112():
    b = VisitBuilder(length=70)
    b.proc("97112", "09:00", "10:00")
    b.line("97112", 4)
    return _b(b)


def cap_across_encounters():
    """3 units this visit + 2 units at another encounter the same day, both GP."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:45")
    b.line("97112", 3)
    b.earlier_visit("enc-0", b.day)
    b.line("97112", 2, encounter="enc-0")
    return _b(b)


# --- time -------------------------------------------------------------------------------------
def overlapping_timed():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:25")
    b.proc("97110", "09:15", "09:40", note="Strength 3x10.")
    b.line("97112", 2)
    b.line("97110", 1)
    return _b(b)


def back_to_back():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:25")
    b.proc("97110", "09:25", "09:40", note="Strength 3x10.")
    b.line("97112", 2)
    b.line("97110", 1)
    return _b(b)


def group_overlapping():
    b = VisitBuilder()
    b.proc("97150", "10:00", "10:30", note="Group balance class, 3 patients.")
    b.proc("97112", "10:20", "10:40")
    b.line("97150", 1)
    b.line("97112", 1)
    return _b(b)


def group_separate_with_59():
    b = VisitBuilder()
    b.proc("97150", "10:00", "10:30", note="Group balance class, 3 patients.", goals=("goal-9",))
    b.proc("97112", "10:30", "10:50")
    b.line("97150", 1)
    b.line("97112", 1, mods=("GP", "59"))
    return _b(b)


def group_separate_no_59():
    b = VisitBuilder()
    b.proc("97150", "10:00", "10:30", note="Group balance class, 3 patients.", goals=("goal-9",))
    b.proc("97112", "10:30", "10:50")
    b.line("97150", 1)
    b.line("97112", 1)
    return _b(b)


def estim_overlapping():
    b = VisitBuilder()
    b.proc(
        "G0283",
        "09:00",
        "09:15",
        note="Unattended e-stim",
        system="https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    )
    b.proc("97112", "09:05", "09:30")
    b.line("G0283", 1)
    b.line("97112", 2)
    return _b(b)


def estim_before():
    b = VisitBuilder()
    b.proc(
        "G0283",
        "09:00",
        "09:15",
        note="Unattended e-stim",
        system="https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    )
    b.proc("97112", "09:15", "09:40")
    b.line("G0283", 1)
    b.line("97112", 2)
    return _b(b)


def total_time_short():
    b = VisitBuilder(length=30)
    b.proc("97112", "09:00", "09:45")
    b.line("97112", 3)
    return _b(b)


# --- modifiers -------------------------------------------------------------------------------
def no_gp():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1, mods=())
    return _b(b)


def ot_with_gp():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20", performer="OT")
    b.line("97112", 1, mods=("GP",))
    return _b(b)


def ot_with_go():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20", performer="OT")
    b.line("97112", 1, mods=("GO",))
    return _b(b)


def cq_with_go():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20", performer="OT")
    b.line("97112", 1, mods=("GO", "CQ"))
    return _b(b)


def pta_alone_no_cq():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:30", performer="PTA")
    b.line("97112", 2)
    return _b(b)


def pta_alone_with_cq():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:30", performer="PTA")
    b.line("97112", 2, mods=("GP", "CQ"))
    return _b(b)


def pta_with_pt_together():
    """APTA: PT furnishes the units while the PTA assists: no CQ."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:30", performers=("PT", "PTA"))
    b.line("97112", 2)
    return _b(b)


def pta_de_minimis():
    """PTA alone 2 of 30 minutes (under 10%): no CQ needed."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:28")
    b.proc("97112", "09:28", "09:30", performer="PTA")
    b.line("97112", 2)
    return _b(b)


def xs_same_goal():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20")
    b.proc("97110", "09:20", "09:40", note="Strength 3x10 with verbal cues.")
    b.line("97112", 1, mods=("GP", "XS"))
    b.line("97110", 2)
    return _b(b)


def xs_separate_goals():
    b = clean_visit()
    b.claim_items[0]["modifier"].append({"coding": [{"code": "XS"}]})
    return _b(b)


def xs_overlapping():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:25")
    b.proc("97110", "09:20", "09:40", goals=("goal-2",), note="Strength 3x10.")
    b.line("97112", 2, mods=("GP", "59"))
    b.line("97110", 1)
    return _b(b)


def _kx(
    prior: float,
    kx_on_line: bool = False,
    medicare: bool = True,
    charged: float | None = None,
    sopt: str = "1",
    payer: str = "Medicare Part B",
):
    """An earlier 2026 visit the payer allowed ``prior`` dollars for (charged ``charged``, else
    the same), then this visit's 97112 x 2 (no remittance yet: MPFS 2026, 2 x $33.07)."""
    kwargs = {"payer": payer, "sopt": sopt}
    if not medicare:
        kwargs = {"payer": "Acme Commercial Health", "sopt": "5"}
    b = VisitBuilder(**kwargs)
    b.proc("97112", "09:00", "09:30")
    b.earlier_visit("enc-0", "2026-02-10")
    b.line(
        "97110",
        10,
        amount=prior if charged is None else charged,
        encounter="enc-0",
        day="2026-02-10",
        allowed=prior,
    )
    b.line("97112", 2, mods=("GP", "KX") if kx_on_line else ("GP",), amount=80.0)
    return _b(b)


def _kx_year(day: str, medicare: bool = True, sopt: str = "1", mods=("GP",)):
    kwargs = {"day": day, "sopt": sopt}
    if not medicare:
        kwargs.update(payer="Acme Commercial Health", sopt="5")
    b = VisitBuilder(**kwargs)
    b.proc("97112", "09:00", "09:30")
    b.line("97112", 2, mods=mods)
    return _b(b)


# --- documentation -----------------------------------------------------------------------------
def _doc(note: str, visit_note: str = "Visit note. Total treatment time 40 min.", **kwargs):
    b = VisitBuilder(visit_note=visit_note, **kwargs)
    b.proc("97112", "09:00", "09:20", note=note)
    b.line("97112", 1)
    return _b(b)


def weak_note():
    return _doc("Patient performed balance exercises independently, no cues needed.")


def no_deficit_but_cues():
    return _doc("Tandem stance on foam with verbal and tactile cues; pt tolerated well.")


def negated_deficit():
    return _doc("Tandem walking with verbal cues, without loss of balance; pt tolerated well.")


def cues_not_required():
    return _doc("Impaired balance. Tandem stance; cues were not required. Tolerated.")


def purpose_only_note():
    """Issue 12 (a): a purpose ('balance work to improve stability') is not a technique."""
    return _doc(
        "Impaired single-leg balance; balance work to improve stability, progressed as "
        "tolerated; pt tolerated well."
    )


def planned_perturbation():
    """A technique only planned for the next visit was not given this visit."""
    return _doc("Impaired balance; static stance; will add perturbation training next visit.")


def observed_independent():
    """Issue 12 (b): independent performance of a taught program while the therapist observed."""
    return _doc(
        "Impaired balance; pt performed previously instructed balance exercises independently "
        "while therapist observed; tolerated well."
    )


def independent_then_hands_on():
    """Independent in one task, hands-on help (min A) in another: not supervision only."""
    return _doc("Impaired balance; pt independent with static stance; tandem walking with min A.")


def no_response():
    return _doc("Impaired balance; perturbation training with tactile cues.")


def strengthening_note():
    return _doc(
        "Quad strengthening with theraband, squats 3x10 reps, leg press 40 lbs for "
        "strength and endurance; impaired balance noted; verbal cues; tolerated."
    )


def functional_task_note():
    return _doc(
        "Transfers sit to stand, lifting and carrying a box, bed mobility and reaching "
        "overhead shelf for functional tasks; verbal cues; impaired balance; tolerated."
    )


def no_goals():
    b = VisitBuilder(goal=False)
    b.proc("97112", "09:00", "09:20", goals=())
    b.line("97112", 1)
    return _b(b)


def unmeasurable_goal():
    b = VisitBuilder(goal=False)
    b.add(
        {
            "resourceType": "Goal",
            "id": "goal-1",
            "lifecycleStatus": "active",
            "subject": {"reference": "Patient/pat-1"},
            "description": {"text": "Better balance"},
        }
    )
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def no_measure():
    b = VisitBuilder(measure=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def no_earlier_measure():
    b = VisitBuilder(earlier_measure=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def only_later_measure():
    """The only other Berg was taken after this visit: no progress can be shown yet."""
    b = VisitBuilder(earlier_measure=False)
    b.observation(None, "2026-05-01T09:05:00-05:00", 50)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def unsigned():
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def no_length():
    b = VisitBuilder(length=None)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def cloned():
    b = VisitBuilder()
    b.earlier_visit("enc-0", "2026-02-25", note=CLEAN_NOTE)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def fresh_note():
    b = VisitBuilder()
    b.earlier_visit(
        "enc-0",
        "2026-02-25",
        note=(
            "Initial session: vestibular hypofunction with dizziness on head turns; gaze "
            "stabilization x1 viewing with verbal cues, habituation; pt reported mild symptoms."
        ),
    )
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    return _b(b)


def not_billed_yet():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20")
    return _b(b)


# --- batch rules: several patients, one audit ------------------------------------------------
def _patients(*visits: VisitBuilder):
    """Bundles of different patients for a batch case (ids prefixed p0, p1, ...)."""
    from plugin.synthetic.ids import unique_ids

    return [unique_ids(v.bundle(), f"p{n}") for n, v in enumerate(visits)], {}


def _one_on_one(start: str, end: str, performer: str = "PT") -> VisitBuilder:
    b = VisitBuilder()
    b.proc("97112", start, end, performer=performer)
    b.line("97112", 2)
    return b


def _group_session(start: str, end: str) -> VisitBuilder:
    b = VisitBuilder()
    b.proc("97150", start, end)
    b.line("97150", 1)
    return b


def two_patients_back_to_back():
    return _patients(_one_on_one("09:00", "09:30"), _one_on_one("09:30", "10:00"))


def two_patients_two_therapists():
    return _patients(_one_on_one("09:00", "09:30"), _one_on_one("09:00", "09:30", "OT"))


def two_patients_in_one_group():
    """Group therapy is concurrent by definition: 97150 for each patient is right."""
    return _patients(_group_session("09:00", "09:45"), _group_session("09:00", "09:45"))


def two_patients_double_booked():
    """CMS ch.5: two patients in the same time period are group therapy, not one-on-one."""
    return _patients(_one_on_one("09:00", "09:30"), _one_on_one("09:15", "09:45"))


def one_on_one_during_a_group():
    return _patients(_one_on_one("09:10", "09:35"), _group_session("09:00", "09:45"))


# --- the day, claims by date, totals (contract §2, §2b; issue 12) --------------------------
def _same_day_visit(b: VisitBuilder, enc_id: str = "enc-2", at: str = "14:00") -> None:
    """A second encounter of the patient on the same date (an afternoon visit)."""
    b.add(
        {
            "resourceType": "Encounter",
            "id": enc_id,
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/pat-1"},
            "period": {"start": b.at(at)},
        }
    )


def two_sevens_one_day():
    """Ch.5 §20.2 C counts minutes 'in a single day': 7 + 7 minutes of 97112 at two visits earn
    one unit between them, billed at the morning visit (the one reviewed)."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:07")
    _same_day_visit(b)
    b.proc("97112", "14:00", "14:07", encounter="enc-2")
    b.line("97112", 1)
    return _b(b, encounter_id="enc-1")


def split_over_billing():
    """10 + 10 minutes of 97112 on one day support 1 unit ('the total number of minutes of
    service ... in a single day'); 1 unit billed at each visit is one too many."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:10")
    _same_day_visit(b)
    b.proc("97112", "14:00", "14:10", encounter="enc-2")
    b.line("97112", 1)
    b.line("97112", 1, encounter="enc-2")
    return _b(b, encounter_id="enc-2")


def claim_without_encounter():
    """Contract §2: a Claim whose items name no encounter is matched by date of service;
    97112 x4 on 24 minutes is not 'supported'."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 4)
    bundle = b.bundle()
    for entry in bundle["entry"]:
        for item in entry["resource"].get("item", ()):
            item.pop("encounter", None)
    return bundle, {}


def seconds_add_up():
    """3 x 7 min 50 s = 23 min 30 s: whole minutes after adding up, 23 minutes, 2 units."""
    b = VisitBuilder()
    for start in ("09:00", "09:10", "09:20"):
        proc = b.proc("97112", start, start)
        proc["performedPeriod"]["end"] = proc["performedPeriod"]["start"].replace(
            f"{start}:00", f"{start[:3]}{int(start[3:]) + 7:02d}:50"
        )
    b.line("97112", 2)
    return _b(b)


TOTAL_ONLY_NOTE = (
    "Treatment note. Deficits: impaired balance. Total timed code minutes: 30. "
    "Total treatment time: 35 min. Patient tolerated well. Signed, PT."
)


def total_timed_only():
    """BPM ch.15 §220.3 E: minutes per intervention 'may also be recorded voluntarily, but
    contractors shall not require it': a stated total of 30 timed minutes supports 2 units."""
    b = VisitBuilder(length=None, visit_note=TOTAL_ONLY_NOTE)
    b.proc("97112", None, None)
    b.line("97112", 2)
    return _b(b)


def total_timed_only_over():
    """The same note billed 3 units: 'The billing and the total timed code treatment minutes
    must be consistent' (BPM ch.15 §220.3 E)."""
    b = VisitBuilder(length=None, visit_note=TOTAL_ONLY_NOTE)
    b.proc("97112", None, None)
    b.line("97112", 3)
    return _b(b)


def untimed_in_total_time():
    """BPM ch.15 §220.3 E: 'Total treatment time includes the minutes for timed code treatment
    and untimed code treatment': 47 timed + 15 e-stim minutes do not fit in 55."""
    b = clean_visit(length=55)
    b.proc("G0283", "09:47", "10:02", system=HCPCS, goals=(), note="Unattended e-stim.")
    b.line("G0283", 1)
    return _b(b)


def no_timed_minutes_at_all():
    """Encounter.length is there but neither per-code minutes nor a total timed minutes."""
    b = VisitBuilder()
    b.proc("97112", None, None)
    b.line("97112", 1)
    return _b(b)


# --- untimed units, coverage, performers --------------------------------------------------
def _estim(units: int, code: str = "G0283", **kwargs):
    b = clean_visit(length=70, **kwargs)
    system = HCPCS if code.startswith("G") else "http://www.ama-assn.org/go/cpt"
    b.proc(code, "09:47", "10:02", system=system, goals=(), note="Unattended e-stim, 15 min.")
    item = b.line(code, units)
    item["productOrService"]["coding"][0]["system"] = system
    return b


def g0283_once():
    return _b(_estim(1))


def g0283_three_units():
    """G0283 is untimed ('unattended'): one unit per date of service, not 3."""
    return _b(_estim(3))


def group_two_units():
    b = clean_visit()
    b.proc("97150", "09:47", "10:17", goals=(), note="Group balance class, 3 patients.")
    b.line("97150", 2)
    return _b(b)


def _hot_pack(**kwargs):
    b = clean_visit(length=60, **kwargs)
    b.proc("97010", "09:30", "09:45", goals=(), note="Hot pack to the lumbar spine, 15 min.")
    b.line("97010", 1)
    return b


def hot_pack_97010_medicare():
    """97010 has MPFS status B (RVU25D PPRRVU2025_Oct.csv): bundled, never paid separately."""
    return _b(_hot_pack())


def hot_pack_97010_commercial():
    """The status is Medicare's: another payer's list decides for that payer."""
    return _b(_hot_pack(payer="Acme Commercial Health", sopt="5"))


def estim_97014_medicare():
    """Medicare does not pay 97014 (MPFS status I); unattended e-stim is G0283."""
    return _b(_estim(1, code="97014"))


def estim_97014_commercial():
    return _b(_estim(1, code="97014", payer="Acme Commercial Health", sopt="5"))


def _aide(b: VisitBuilder, role: str = "Rehabilitation aide") -> None:
    b.add(
        {
            "resourceType": "Practitioner",
            "id": "aide",
            "qualification": [{"code": {"text": role}}],
        }
    )


def aide_minutes():
    """BPM ch.15 §230.1: services of aides 'are not therapy services and are not covered'."""
    b = clean_visit()
    _aide(b)
    b.proc("97110", "09:47", "10:02", performer="AIDE", goals=(), note="Bike 15 min.")
    b.line("97110", 1, amount=35.0)
    return _b(b)


def student_with_therapist():
    """A student on a service the PT also furnished: the PT's minutes count."""
    b = VisitBuilder()
    _aide(b, role="Student physical therapist")
    b.proc("97112", "09:00", "09:24", performers=("PT", "AIDE"))
    b.line("97112", 2)
    return _b(b)


def pta_two_units_one_cq():
    """CMS CQ/CO billing examples (CY2022 on): the de minimis is judged per billed unit; a PTA
    who furnished both units needs CQ on both, not on one of two lines."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:30", performer="PTA")
    b.line("97112", 1, mods=("GP", "CQ"))
    b.line("97112", 1)
    return _b(b)


def pta_cosigned_by_pt():
    """A PT who only co-signs did not furnish the minutes: the PTA furnished them alone."""
    b = VisitBuilder()
    proc = b.proc("97112", "09:00", "09:30", performers=("PTA", "PT"))
    proc["performer"][1]["function"] = {"text": "Co-signing supervisor"}
    b.line("97112", 2)
    return _b(b)


def pta_full_unit_pt_final_unit():
    """CMS example shape: PTA 15 minutes alone, then PT 10 minutes: one unit with CQ (the
    PTA's full unit) and one without (the PT alone meets 8 minutes of the final unit)."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:15", performer="PTA")
    b.proc("97112", "09:15", "09:25")
    b.line("97112", 1, mods=("GP", "CQ"))
    b.line("97112", 1)
    return _b(b)


def xs_interleaved():
    """NCCI: 59/XS on therapy pairs means separate time blocks; 97112 before and after 97110
    is not one."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:10")
    b.proc("97110", "09:10", "09:25", note="Strength 3x10.")
    b.proc("97112", "09:25", "09:35")
    b.line("97112", 1, mods=("GP", "XS"))
    b.line("97110", 1)
    return _b(b)


# --- the episode: plan of care and progress reports (BPM ch.15 §220.1.3, §220.3 D) ----------
TEN_DAYS = TEN_TREATMENT_DAYS


def _episode(days=TEN_DAYS, **plan) -> VisitBuilder:
    """A PT visit on 2026-03-04 after earlier PT treatment days; the plan from 2026-02-02."""
    b = VisitBuilder(plan_of_care=False)
    b.plan_of_care(start=plan.pop("start", "2026-02-02"), **plan)
    b.treatment_days(days)
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2)
    return b


def _report(b: VisitBuilder, day: str, author: str = "pt", loinc: str = "11508-9") -> None:
    b.progress_report(day, author, loinc)


def plan_certified_in_date():
    return _b(_episode(days=TEN_DAYS[:5]))


def plan_pending_first_30_days():
    """Not yet signed 10 days into the plan: pending (certify 'within 30 days')."""
    return _b(_episode(days=(), start="2026-02-22", certified="never"))


def plan_only_therapist_signed():
    """Only the PT signed, 43 days after the first treatment: no physician/NPP certification."""
    return _b(_episode(days=("2026-01-20", *TEN_DAYS[:4]), start="2026-01-20", certified="never"))


def plan_expired():
    """'90 calendar days from the date of the initial treatment': a plan from 2025-11-20 to
    2026-06-30 is certified through 2026-02-17 only; no recertified plan follows."""
    return _b(_episode(days=(), start="2025-11-20", end="2026-06-30"))


def plan_recertified():
    b = _episode(days=(), start="2025-11-20", end="2026-02-17")
    b.plan_of_care(start="2026-02-18", end="2026-05-18", certified="2026-02-20", plan_id="poc-2")
    return _b(b)


def plan_signed_after_visit():
    """'Since delayed certification is allowed, the date the certification is signed is
    important only to determine if it is timely or delayed': a later signature certifies."""
    return _b(_episode(days=("2026-02-20",), start="2026-02-20", certified="2026-03-10"))


def plan_certified_late():
    """Signed 2026-03-10, 36 days after the first treatment on 2026-02-02."""
    return _b(_episode(days=TEN_DAYS[:5], certified="2026-03-10"))


def plan_order_exception():
    """CY2025: a signed, dated physician order plus the plan sent within 30 days certifies."""
    b = _episode(days=TEN_DAYS[:5], certified="never")
    b.order_and_plan_sent(ordered="2026-01-28", sent="2026-02-05")
    return _b(b)


def eleventh_day_no_report():
    """'at least once every 10 treatment days': 10 earlier days, this visit is the 11th."""
    return _b(_episode())


def report_on_day_ten():
    """A PT report on day 10 closes the period: this visit is day 1 of the next."""
    b = _episode()
    _report(b, "2026-02-23")
    return _b(b)


def assistant_report_on_day_ten():
    """PTAs 'may write elements of the progress report' but 'these are not complete progress
    reports': the 11th day is still overdue."""
    b = _episode()
    _report(b, "2026-02-23", author="pta")
    return _b(b)


def daily_progress_note_on_day_ten():
    """LOINC 11506-3 'Progress note' is the daily note, not a Medicare progress report."""
    b = _episode()
    _report(b, "2026-02-23", loinc="11506-3")
    return _b(b)


def two_visits_one_day_count_once():
    """Ten treatment days with two visits on one of them, this visit the 10th day: in time."""
    b = _episode(days=(*TEN_DAYS[:9], "2026-02-23"))
    b.earlier_visit("enc-twice", "2026-02-23", note="Afternoon session, balance with cues.")
    b.entries = [
        e
        for e in b.entries
        if not (e["resource"]["resourceType"] == "Encounter" and e["resource"]["id"] == "enc-d8")
        and not (
            e["resource"]["resourceType"] == "Procedure"
            and e["resource"]["encounter"]["reference"] == "Encounter/enc-d8"
        )
    ]
    return _b(b)


def no_plan_of_care_read():
    return _b(clean_visit(plan_of_care=False))


def commercial_without_plan():
    return _b(clean_visit(plan_of_care=False, payer="Acme Commercial Health", sopt="5"))


def only_an_ot_plan_for_a_pt_visit():
    """PT and OT episodes are apart: an OT plan does not certify PT treatment."""
    b = clean_visit(plan_of_care=False)
    b.plan_of_care(discipline="Occupational therapy", plan_id="poc-ot")
    return _b(b)


# --- what could not be read (contract §2, "Unread is not absent") ---------------------------
def _unread(b: VisitBuilder, rtype: str, why: str, part: str = "", ehr: str = "Epic") -> None:
    """The reading note a fetch leaves for what the EHR would not give (plugin/ehr/reader.py)."""
    note = reading_note(why, f"case-{rtype}", resource=rtype, part=part)
    b.entries.append({"resource": with_ehr(note, ehr), "search": {"mode": "outcome"}})


def _without(b: VisitBuilder, rtype: str) -> VisitBuilder:
    b.entries = [e for e in b.entries if e["resource"]["resourceType"] != rtype]
    return b


def observations_refused():
    """Epic refused the Observation search: the measure this visit took was not read."""
    b = _without(clean_visit(), "Observation")
    _unread(b, "Observation", "the EHR refused the Observation search (400: category exam)")
    return _b(b)


def measure_read_despite_a_refused_category():
    """Some categories refused, but this visit's measure and an earlier one were read."""
    b = clean_visit()
    _unread(b, "Observation", "the EHR refused the category activity", part="category activity")
    return _b(b)


def payer_refused():
    """Oracle refused the Coverage search and the Claim's coverage is not in the record read:
    the payer is unknown, so the Medicare rules did not run (never silently)."""
    b = _without(clean_visit(), "Coverage")
    _unread(b, "Coverage", "the EHR refused the Coverage search (400)", ehr="Oracle Health")
    return _b(b)


def payer_named_but_missing():
    """The Claim names Coverage/cov-1, which is not in the record read."""
    return _b(_without(clean_visit(), "Coverage"))


def payer_read_from_the_claim():
    """The Coverage search was refused, but the Claim's Coverage was read all the same."""
    b = clean_visit()
    _unread(b, "Coverage", "the EHR refused the Coverage search (400)", ehr="Oracle Health")
    return _b(b)


def note_text_not_read():
    """The visit note's text is on a host the token may not go to: the note is not unsigned,
    its deficit and cues not missing; they were not read."""
    b = VisitBuilder(visit_note="")
    b.proc("97112", "09:00", "09:24", note="See note.")
    b.line("97112", 2)
    doc = next(
        e["resource"] for e in b.entries if e["resource"]["resourceType"] == "DocumentReference"
    )
    key = f"DocumentReference/{doc['id']}"
    _unread(b, "Binary", f"{key}: its attachment url is on another server", part=key)
    return _b(b)


def earlier_note_not_read():
    """An earlier visit's note text was not read: no rule of this visit rests on it."""
    b = clean_visit()
    b.earlier_visit("enc-0", "2026-02-20")
    earlier = b.document("enc-0", "")
    key = f"DocumentReference/{earlier['id']}"
    _unread(b, "Binary", f"{key}: its attachment url is on another server", part=key)
    return _b(b)


def reports_not_read():
    """The 11th treatment day, and the notes (progress reports among them) were refused."""
    b = _episode()
    _unread(b, "DocumentReference", "the EHR refused the DocumentReference search (400)")
    return _b(b)


CASES: dict[str, dict[str, list]] = {
    "poc-not-certified": {
        "pass": [
            clean,
            plan_certified_in_date,
            plan_pending_first_30_days,
            plan_recertified,
            plan_signed_after_visit,
            plan_order_exception,
            no_plan_of_care_read,
        ],
        "fail": [plan_only_therapist_signed, plan_expired],
    },
    "poc-certified-late": {
        "pass": [clean, plan_certified_in_date, plan_signed_after_visit],
        "fail": [plan_certified_late],
    },
    "progress-report-overdue": {
        "pass": [clean, report_on_day_ten, two_visits_one_day_count_once],
        "fail": [
            eleventh_day_no_report,
            assistant_report_on_day_ten,
            daily_progress_note_on_day_ten,
        ],
    },
    "episode-unknown": {
        "pass": [clean, commercial_without_plan, plan_certified_in_date],
        "fail": [no_plan_of_care_read, only_an_ot_plan_for_a_pt_visit],
    },
    "units-exceed-time": {
        "pass": [clean, back_to_back, two_sevens_one_day, seconds_add_up, total_timed_only],
        "fail": [
            exceed_single,
            tie_billed_both_two,
            no_minutes,
            six_minutes_alone,
            split_over_billing,
            claim_without_encounter,
            total_timed_only_over,
        ],
    },
    "units-under-billed": {"pass": [clean], "fail": [under_billed]},
    "under-8-minutes": {
        "pass": [clean, seven_plus_seven_pooled, two_sevens_one_day],
        "fail": [six_minutes_alone],
    },
    "missing-minutes": {
        "pass": [clean, not_billed_yet, total_timed_only],
        "fail": [no_minutes, procedure_without_period],
    },
    "daily-unit-cap": {
        "pass": [clean, four_units_97112],
        "fail": [five_units_97112, cap_across_encounters],
    },
    "minutes-overlap": {"pass": [clean, back_to_back], "fail": [overlapping_timed]},
    "group-overlap": {"pass": [clean, group_separate_with_59], "fail": [group_overlapping]},
    "untimed-overlap": {"pass": [clean, estim_before], "fail": [estim_overlapping]},
    "total-time-mismatch": {
        "pass": [clean, no_length, g0283_once],
        "fail": [total_time_short, untimed_in_total_time],
    },
    "missing-discipline-modifier": {"pass": [clean], "fail": [no_gp]},
    "discipline-modifier-mismatch": {"pass": [clean, ot_with_go], "fail": [ot_with_gp, cq_with_go]},
    "missing-assistant-modifier": {
        "pass": [
            clean,
            pta_alone_with_cq,
            pta_with_pt_together,
            pta_de_minimis,
            pta_full_unit_pt_final_unit,
        ],
        "fail": [pta_alone_no_cq, pta_two_units_one_cq, pta_cosigned_by_pt],
    },
    "missing-distinct-modifier": {
        "pass": [clean, group_separate_with_59],
        "fail": [group_separate_no_59],
    },
    "unsupported-distinct-modifier": {
        "pass": [clean, xs_separate_goals, group_separate_with_59, xs_same_goal],
        "fail": [xs_overlapping, xs_interleaved],
    },
    "missing-kx": {
        "pass": [
            clean,
            lambda: _kx(1000.0),
            lambda: _kx(2450.0, kx_on_line=True),
            lambda: _kx(2450.0, medicare=False),
            # charged $150/unit ($2,400) but allowed $40/unit ($400): under the threshold
            lambda: _kx(400.0, charged=2400.0),
            # Medicare Advantage (SOPT 111 Medicare HMO): not fee-for-service, no KX threshold
            lambda: _kx(2450.0, sopt="111", payer="Acme Medicare Advantage HMO"),
        ],
        "fail": [lambda: _kx(2450.0), lambda: _kx(2450.0, charged=900.0)],
    },
    "kx-threshold-unknown": {
        "pass": [
            clean,
            lambda: _kx_year("2027-03-04", medicare=False),
            lambda: _kx_year("2027-03-04", sopt="112"),  # Medicare PPO (Advantage)
            lambda: _kx_year("2027-03-04", mods=()),  # no therapy line to count
        ],
        "fail": [lambda: _kx_year("2027-03-04"), lambda: _kx_year("2020-06-01")],
    },
    "targeted-review-threshold": {
        "pass": [clean, lambda: _kx(2450.0)],
        "fail": [lambda: _kx(2950.0, kx_on_line=True)],
    },
    "doc-no-deficit": {"pass": [clean], "fail": [weak_note, no_deficit_but_cues, negated_deficit]},
    "doc-no-skilled-intervention": {
        "pass": [clean],
        "fail": [weak_note, cues_not_required, purpose_only_note, planned_perturbation],
    },
    "doc-no-patient-response": {"pass": [clean, no_deficit_but_cues], "fail": [no_response]},
    "doc-no-functional-goal": {"pass": [clean], "fail": [no_goals, unmeasurable_goal]},
    "doc-no-objective-measure": {"pass": [clean], "fail": [no_measure]},
    "doc-no-progress": {
        "pass": [clean, no_measure],
        "fail": [no_earlier_measure, only_later_measure],
    },
    "doc-unsigned": {"pass": [clean], "fail": [unsigned]},
    "doc-no-total-time": {
        "pass": [clean, total_timed_only],
        "fail": [no_length, no_timed_minutes_at_all],
    },
    "untimed-units-exceed": {
        "pass": [clean, g0283_once],
        "fail": [g0283_three_units, group_two_units],
    },
    "code-not-covered": {
        "pass": [clean, g0283_once, estim_97014_commercial, hot_pack_97010_commercial],
        "fail": [estim_97014_medicare, hot_pack_97010_medicare],
    },
    "unqualified-performer": {
        "pass": [clean, student_with_therapist],
        "fail": [aide_minutes],
    },
    "supervision-only": {
        "pass": [clean, no_deficit_but_cues, independent_then_hands_on],
        "fail": [weak_note, observed_independent],
    },
    "code-selection": {
        "pass": [clean, weak_note],
        "fail": [strengthening_note, functional_task_note],
    },
    "cloned-note": {"pass": [clean, fresh_note], "fail": [cloned]},
    "reading-incomplete": {
        "pass": [
            clean,
            measure_read_despite_a_refused_category,
            earlier_note_not_read,
            payer_read_from_the_claim,
        ],
        "fail": [
            observations_refused,
            payer_refused,
            payer_named_but_missing,
            note_text_not_read,
            reports_not_read,
        ],
    },
    "concurrent-therapy-overlap": {
        "pass": [two_patients_back_to_back, two_patients_two_therapists, two_patients_in_one_group],
        "fail": [two_patients_double_booked, one_on_one_during_a_group],
    },
}
