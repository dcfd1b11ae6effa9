"""The concurrent-therapy rule on a feed that puts every visit of a therapist at the same time
(a bulk import that lost the times): bounded work and memory, every visit still flagged."""

from __future__ import annotations

from datetime import datetime, timedelta

from plugin.policy import load_policy
from plugin.rules.batch import MAX_LISTED, MAX_PARTNERS, TreatmentSlot, review_slots


def slot(n: int, start: datetime, minutes: int = 30, therapist: str = "Practitioner/pt"):
    return TreatmentSlot(
        therapist=therapist,
        patient=f"Patient/p{n}",
        encounter=f"Encounter/e{n}",
        code="97112",
        start=start,
        end=start + timedelta(minutes=minutes),
        group=False,
        billed_units=2,
        unit_price=35.0,
    )


def test_three_thousand_patients_at_midnight_are_all_flagged_in_bounded_findings():
    midnight = datetime(2026, 3, 4)
    slots = [slot(n, midnight) for n in range(3000)]
    found = review_slots(slots, load_policy())
    assert {encounter for encounter, _ in found} == {s.encounter for s in slots}
    assert len(found) == 3000  # one finding per visit, not one per pair
    for _, finding in found:
        assert len(finding.evidence) <= MAX_LISTED
    assert any(f"at least {MAX_PARTNERS} other patients" in f.message for _, f in found)
    assert all(f.dollars_at_risk == 70.0 for _, f in found)


def test_a_handoff_on_the_minute_is_not_concurrent():
    nine = datetime(2026, 3, 4, 9)
    slots = [slot(n, nine + timedelta(minutes=30 * n)) for n in range(20)]
    assert review_slots(slots, load_policy()) == []


def test_two_therapists_at_the_same_time_are_not_concurrent():
    nine = datetime(2026, 3, 4, 9)
    slots = [slot(0, nine), slot(1, nine, therapist="Practitioner/ot")]
    assert review_slots(slots, load_policy()) == []


def test_one_person_through_a_role_and_directly_is_one_therapist():
    from plugin.review import review_bundle
    from plugin.rules.batch import slots_of
    from plugin.synthetic.ids import unique_ids
    from plugin.synthetic.visit import VisitBuilder

    role = {
        "resourceType": "PractitionerRole",
        "id": "pt-role",
        "practitioner": {"reference": "Practitioner/pt"},
    }
    slots = []
    for n, actor in enumerate(("Practitioner/pt", "PractitionerRole/pt-role")):
        b = VisitBuilder()
        b.add(role)
        proc = b.proc("97112", "09:00", "09:30")
        proc["performer"] = [{"actor": {"reference": actor}}]
        b.line("97112", 2)
        bundle = unique_ids(b.bundle(), f"r{n}")
        visit = review_bundle(bundle, encounter_id=f"r{n}-enc-1").visit
        slots += slots_of(visit, load_policy())
    assert {s.therapist for s in slots} == {"Practitioner/pt"}
    assert len(review_slots(slots, load_policy())) == 2
