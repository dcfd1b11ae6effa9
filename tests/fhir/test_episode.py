"""Reading the episode (contract §2b): plans and who certified them, progress reports, treatment
days; the same whichever visit of a patient's index asks first, and each note said once."""

from __future__ import annotations

from datetime import date

from plugin.fhir import build_visit, index_bundle
from plugin.policy import load_policy
from plugin.synthetic.visit import VisitBuilder

MD = {"reference": "Practitioner/md"}


def _md(b: VisitBuilder) -> None:
    b.add(
        {
            "resourceType": "Practitioner",
            "id": "md",
            "qualification": [{"code": {"text": "MD"}}],
        }
    )


def _plan(b: VisitBuilder, plan_id: str, title: str = "Plan of care", **fields) -> dict:
    plan = {
        "resourceType": "CarePlan",
        "id": plan_id,
        "status": "active",
        "intent": "plan",
        "title": title,
        "subject": {"reference": "Patient/pat-1"},
        "period": {"start": "2026-02-16", "end": "2026-04-30"},
    }
    plan.update(fields)
    return b.add(plan)


def _document(b: VisitBuilder, doc_id: str, **fields) -> dict:
    doc = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "subject": {"reference": "Patient/pat-1"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "UmVwb3J0Lg=="}}],
    }
    doc.update(fields)
    return b.add(doc)


def _pt_and_ot_visit() -> VisitBuilder:
    b = VisitBuilder(plan_of_care=False)
    _md(b)
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2, mods=("GP",))
    b.proc("97530", "09:30", "09:54")
    b.line("97530", 2, mods=("GO",))
    return b


def _episodes(bundle: dict, encounter: str | None = None) -> dict:
    visit = build_visit(index_bundle(bundle), load_policy(), encounter_id=encounter)
    return {e.discipline: e for e in visit.episodes}, visit.notes


def test_a_plan_naming_no_discipline_serves_both_and_its_undated_signature_is_noted_once():
    b = _pt_and_ot_visit()
    _plan(b, "poc-any", author=MD)
    episodes, notes = _episodes(b.bundle())
    assert sorted(episodes) == ["OT", "PT"]
    for discipline in ("OT", "PT"):
        (plan,) = episodes[discipline].plans
        assert plan.ref == "CarePlan/poc-any"
        assert plan.certified_on is None
    undated = [n for n in notes if "signed by a physician/NPP but undated" in n]
    assert undated == [
        "CarePlan/poc-any: signed by a physician/NPP but undated (no CarePlan.created)"
    ]


def test_provenance_and_plan_documents_certify_the_earliest_signature():
    b = VisitBuilder(plan_of_care=False)
    _md(b)
    _plan(b, "poc-1", title="Physical therapy plan of care")
    _plan(b, "poc-2", title="Physical therapy plan of care", period={"end": "2026-05-30"})
    b.add(
        {
            "resourceType": "Provenance",
            "id": "prov-1",
            # the same target twice is one target
            "target": [{"reference": "CarePlan/poc-1"}, {"reference": "CarePlan/poc-1"}],
            "recorded": "2026-02-20T10:00:00Z",
            "signature": [{"when": "2026-02-20T10:00:00-05:00", "who": MD}],
        }
    )
    poc = {"coding": [{"system": "http://loinc.org", "code": "18776-5"}]}
    # related to poc-1, signed earlier than the Provenance
    _document(
        b,
        "poc-doc-1",
        type=poc,
        date="2026-02-18T12:00:00-05:00",
        authenticator=MD,
        context={"related": [{"reference": "CarePlan/poc-1"}]},
    )
    # related to nothing: covers a plan with a period start (poc-1), not poc-2 (none)
    _document(b, "poc-doc-2", type=poc, date="2026-02-19", authenticator=[MD])
    episodes, _ = _episodes(b.bundle())
    plans = {p.ref: p for p in episodes["PT"].plans}
    assert plans["CarePlan/poc-1"].certified_on == date(2026, 2, 18)
    assert plans["CarePlan/poc-1"].certified_by == "Practitioner/md (DocumentReference/poc-doc-1)"
    assert plans["CarePlan/poc-2"].certified_on is None
    assert [p.ref for p in episodes["PT"].plans] == ["CarePlan/poc-2", "CarePlan/poc-1"]


def test_progress_reports_by_title_type_and_author_and_a_dateless_one_noted():
    b = _pt_and_ot_visit()
    _plan(b, "poc-any", created="2026-02-16", author=MD)
    report = {"coding": [{"system": "http://loinc.org", "code": "11508-9"}]}
    daily = {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]}
    _document(b, "r-ot", type=report, date="2026-02-20", description="OT progress report")
    _document(b, "r-pt-author", type=report, date="2026-02-21", author=[{"display": "Lee, PT"}])
    _document(
        b,
        "r-titled",
        type=daily,
        date="2026-02-22",
        content=[{"attachment": {"title": "Progress Report - week 2"}}],
    )
    _document(b, "r-daily", type=daily, date="2026-02-23")
    _document(b, "r-error", type=report, date="2026-02-24", status="entered-in-error")
    _document(b, "r-undated", type=report)
    episodes, notes = _episodes(b.bundle())
    assert [r.ref for r in episodes["PT"].reports] == [
        "DocumentReference/r-pt-author",
        "DocumentReference/r-titled",
    ]
    assert episodes["PT"].reports[0].role == "PT"
    assert [r.ref for r in episodes["OT"].reports] == [
        "DocumentReference/r-ot",
        "DocumentReference/r-titled",
    ]
    undated = [n for n in notes if "without a date" in n]
    assert undated == ["DocumentReference/r-undated: a progress report without a date; not counted"]


def test_an_absent_signer_leaves_the_certification_unknown():
    b = VisitBuilder(plan_of_care=False)
    _plan(
        b,
        "poc-1",
        title="Physical therapy plan of care",
        created="2026-02-16",
        contributor=[{"reference": "Practitioner/not-read"}],
    )
    episodes, _ = _episodes(b.bundle())
    assert episodes["PT"].unknown == (
        "the PT plan of care's certification could not be read "
        "(Practitioner/not-read, who signed it, is not in the record read)"
    )


def test_treatment_days_are_the_same_whichever_visit_of_the_index_asks_first():
    b = VisitBuilder()
    for n, day in enumerate(("2026-02-20", "2026-02-20", "2026-02-25", "2026-03-10")):
        b.earlier_visit(f"enc-{n}", day, note="Balance training with cues.")
    bundle = b.bundle()
    policy = load_policy()
    fresh = {
        enc: build_visit(index_bundle(bundle), policy, encounter_id=enc).episodes
        for enc in ("enc-1", "enc-2", "enc-3")
    }
    assert [e.treatment_days for e in fresh["enc-1"]] == [
        (date(2026, 2, 20), date(2026, 2, 25), date(2026, 3, 4))
    ]
    assert [e.treatment_days for e in fresh["enc-2"]] == [(date(2026, 2, 20), date(2026, 2, 25))]
    shared = index_bundle(bundle)
    for enc in ("enc-3", "enc-1", "enc-2"):
        assert build_visit(shared, policy, encounter_id=enc).episodes == fresh[enc]


def test_treatment_days_of_two_encounters_from_their_lines_or_their_performers():
    # PT named by the visit's lines; OT only by a performer; the earlier visit bills nothing.
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2, mods=("GP",))
    b.proc("97530", "09:30", "09:54", performer="OT")
    b.earlier_visit("enc-0", "2026-02-20", note="Balance training with cues.")
    bundle = b.bundle()
    policy = load_policy()
    visit = build_visit(index_bundle(bundle), policy, encounter_id="enc-1")
    days = {e.discipline: e.treatment_days for e in visit.episodes}
    assert days == {"OT": (date(2026, 3, 4),), "PT": (date(2026, 2, 20), date(2026, 3, 4))}
    earlier = build_visit(index_bundle(bundle), policy, encounter_id="enc-0")
    assert [(e.discipline, e.treatment_days) for e in earlier.episodes] == [
        ("PT", (date(2026, 2, 20),))
    ]
    shared = index_bundle(bundle)
    for enc, fresh in (("enc-0", earlier), ("enc-1", visit)):
        again = build_visit(shared, policy, encounter_id=enc)
        assert again.episodes == fresh.episodes
        assert again.notes == fresh.notes


def test_treatment_days_kept_for_a_year_of_visits_whatever_order_they_are_asked_in():
    # A PT and OT visit, earlier PT, OT and PT+OT visits (one billing nothing): each visit's
    # days are those a fresh index gives, whichever visits a shared index was asked first.
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2, mods=("GP",))
    b.proc("97530", "09:30", "09:54", performer="OT")
    b.line("97530", 2, mods=("GO",))
    earlier = [
        ("e-1", "2026-02-02", "97112", "PT", ("GP",)),
        ("e-2", "2026-02-02", "97530", "OT", ("GO",)),
        ("e-3", "2026-02-09", "97530", "OT", None),
        ("e-4", "2026-02-16", "97112", "PT", ("GP",)),
        ("e-5", "2026-02-23", "97530", "OT", ("GO",)),
    ]
    for enc, day, code, performer, mods in earlier:
        b.earlier_visit(enc, day)
        b.proc(code, "09:00", "09:30", performer=performer, encounter=enc, day=day)
        if mods:
            b.line(code, 2, mods=mods, encounter=enc, day=day)
    bundle = b.bundle()
    policy = load_policy()
    encounters = ["enc-1"] + [e[0] for e in earlier]
    fresh = {
        enc: build_visit(index_bundle(bundle), policy, encounter_id=enc).episodes
        for enc in encounters
    }
    days = {e.discipline: e.treatment_days for e in fresh["enc-1"]}
    assert days == {
        "OT": (date(2026, 2, 2), date(2026, 2, 9), date(2026, 2, 23), date(2026, 3, 4)),
        "PT": (date(2026, 2, 2), date(2026, 2, 16), date(2026, 3, 4)),
    }
    for order in (encounters, encounters[::-1], ["e-3", "enc-1", "e-1", "e-5", "e-2", "e-4"]):
        shared = index_bundle(bundle)
        for enc in order:
            assert build_visit(shared, policy, encounter_id=enc).episodes == fresh[enc]
