"""Which encounters are therapy visits: the audit reviews these and counts the others as skipped.

An export of a whole organisation holds wellness, emergency, urgent-care and inpatient encounters
beside the therapy visits; reviewing those against therapy billing rules gives nothing but noise.
An encounter is a therapy visit when any of these holds:

- a Procedure of the encounter carries a therapy code (``policy.therapy_codes``: the timed and
  untimed lists of codes.toml), whatever its status;
- a billed line of the encounter (a counted Claim's item, a billable or billed ChargeItem) carries
  a therapy code; a Claim whose items name no encounter counts for the encounter its lines are
  given to on their date of service (the patient's first encounter of that date with a
  Procedure, else the first of that date, as the review assigns them);
- a Procedure performer or an Encounter participant is a PT, PTA, OT, OTA or SLP (by the
  Practitioner's qualification, the PractitionerRole's code, or a role word in the reference's
  display as Epic writes it: plugin.fhir.practitioners.role_of_reference).

Pure reading: nothing here adds a note to the index, so a review of the same index reads as if
this had not run.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from operator import itemgetter

from plugin.fhir.billing import (
    CHARGE_STATUS,
    charge_code,
    claim_counts,
    claim_day,
    claim_item_encounters,
    service_day,
)
from plugin.fhir.encounters import first_of_day
from plugin.fhir.index import Index, billing_code, obj, parse_instant, seq, start_order, text
from plugin.fhir.practitioners import DISCIPLINE_OF, role_of_reference
from plugin.fhir.procedures import procedures_by_encounter
from plugin.policy.model import Policy

__all__ = ["therapy_encounters"]


def therapy_encounters(index: Index, policy: Policy) -> frozenset[str]:
    """The ``Encounter/ID`` keys of the index's therapy visits (computed once per index)."""
    return index.cached("therapy-encounters", _therapy_encounters, index, policy)


def _therapy_encounters(index: Index, policy: Policy) -> frozenset[str]:
    codes = policy.therapy_codes
    found: set[str] = set()
    for procedure in index.by_type.get("Procedure", ()):
        encounter = index.key(procedure.get("encounter"))
        if not encounter:
            continue
        if billing_code(procedure.get("code")) in codes:
            found.add(encounter)
            continue
        if any(_is_therapist(index, obj(p).get("actor")) for p in seq(procedure.get("performer"))):
            found.add(encounter)
    for encounter in index.by_type.get("Encounter", ()):
        if any(
            _is_therapist(index, obj(p).get("individual"))
            for p in seq(encounter.get("participant"))
        ):
            found.add(f"Encounter/{text(encounter.get('id'))}")
    undated: list[tuple[str | None, date]] = []  # (patient, day) of lines naming no encounter
    for claim in index.by_type.get("Claim", ()):
        if not claim_counts(index, claim):
            continue
        items = [obj(i) for i in seq(claim.get("item"))]
        given = claim_item_encounters(index, claim)  # the encounter the review gives each line
        by_date = not any(given)
        for item, encounter in zip(items, given, strict=True):
            if billing_code(item.get("productOrService")) not in codes:
                continue
            if encounter:
                found.add(encounter)
            elif by_date:
                day = service_day(item, claim_day(claim))
                if day is not None:
                    undated.append((index.key(claim.get("patient")), day))
    for item in index.by_type.get("ChargeItem", ()):
        if text(item.get("status")) in CHARGE_STATUS and charge_code(item) in codes:
            encounter = index.key(item.get("context"))
            if encounter:
                found.add(encounter)
    if undated:
        found |= _first_of_day(index, undated)
    return frozenset(found)


def _is_therapist(index: Index, reference: object) -> bool:
    return role_of_reference(index, reference, quiet=True) in DISCIPLINE_OF


def _first_of_day(index: Index, wanted: list[tuple[str | None, date]]) -> set[str]:
    """For each (patient, day): the encounter the review gives an undated line to
    (plugin.fhir.encounters.first_of_day), its encounters ordered as the review orders them: a
    time without an offset in the organisation's zone, a date alone at its midnight UTC."""
    zone = index.quiet_zone()
    procedures = procedures_by_encounter(index)  # the review's map: it reads the same
    by_patient: defaultdict[str | None, list[tuple[float, str, date | None]]] = defaultdict(list)
    for encounter in index.by_type.get("Encounter", ()):
        start = obj(encounter.get("period")).get("start")
        moment = parse_instant(start, zone)
        key = f"Encounter/{text(encounter.get('id'))}"
        order = start_order(start, moment)
        by_patient[index.key(encounter.get("subject"))].append((order, key, index.local_day(start)))
    given: dict[str | None, dict[date, str]] = {}  # per patient: date -> the encounter
    found = set()
    for patient, day in set(wanted):
        days = given.get(patient)
        if days is None:
            ordered = sorted(by_patient.get(patient, ()), key=itemgetter(0, 1))
            days = given[patient] = first_of_day(ordered, procedures)
        if day in days:
            found.add(days[day])
    return found
