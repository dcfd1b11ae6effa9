"""Build the plain visit model from FHIR R4 resources (contract.md section 2).

The only place that knows FHIR paths, extensions and code systems. Missing or dangling data
becomes an explicit None or a note on the Visit, never an exception, except when there is no
visit to review at all (InputError).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections import defaultdict
from datetime import date

from plugin.domain import BilledLine, EarlierVisit, Goal, Measure, Performer, Service, Visit
from plugin.errors import InputError
from plugin.fhir.billing import patient_lines
from plugin.fhir.index import (
    Index,
    billing_code,
    concept_key,
    concept_text,
    extension_values,
    index_bundle,
    number,
    obj,
    parse_day,
    parse_instant,
    seq,
    text,
)
from plugin.fhir.practitioners import is_signed_by, performer
from plugin.fhir.spend import visit_spend
from plugin.policy.model import Policy

PERTAINS_TO_GOAL = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
SOPT = "https://nahdo.org/sopt"
_TAGS = re.compile(r"<[^>]+>")
LENGTH_FACTORS = {"min": 1.0, "h": 60.0, "hr": 60.0, "s": 1 / 60, "sec": 1 / 60}

__all__ = ["build_visit", "encounter_ids", "index_bundle"]


def encounter_ids(index: Index) -> list[str]:
    return [text(e.get("id")) for e in index.by_type.get("Encounter", ())]


def _pick_encounter(index: Index, encounter_id: str | None) -> dict:
    encounters = index.by_type.get("Encounter", [])
    if not encounters:
        raise InputError("the Bundle holds no Encounter to review")
    if encounter_id is not None:
        for encounter in encounters:
            if text(encounter.get("id")) == encounter_id:
                return encounter
        raise InputError(f"no Encounter with id {encounter_id!r} in the Bundle")
    # The latest by period.start; an Encounter without a start sorts first.
    return max(encounters, key=lambda e: text(obj(e.get("period")).get("start")))


def _length_minutes(encounter: dict) -> int | None:
    length = obj(encounter.get("length"))
    value = number(length.get("value"))
    if value is None or value < 0:
        return None
    unit = text(length.get("code")) or text(length.get("unit")) or "min"
    return int(round(value * LENGTH_FACTORS.get(unit.lower(), 1.0)))


def _notes(resource: dict) -> str:
    return " ".join(text(obj(n).get("text")) for n in seq(resource.get("note")) if n)


def _service(index: Index, procedure: dict, key: str) -> Service | None:
    code = billing_code(procedure.get("code"))
    if code is None:
        return None
    period = obj(procedure.get("performedPeriod"))
    start, end = parse_instant(period.get("start")), parse_instant(period.get("end"))
    minutes = None
    if start and end:
        seconds = (end - start).total_seconds()
        if seconds < 0:
            index.note(f"{key} ends before it starts; its minutes are not counted")
            start = end = None
        else:
            minutes = int(seconds // 60)
    performers: list[Performer] = []
    for position, item in enumerate(seq(procedure.get("performer"))):
        found = performer(index, obj(item).get("actor"), f"{key}.performer[{position}]")
        if found:
            performers.append(found)
    reasons = []
    for position, ref in enumerate(seq(procedure.get("reasonReference"))):
        _, condition = index.resolve(ref, f"{key}.reasonReference[{position}]")
        if condition:
            reasons.append(concept_text(condition.get("code")))
    reasons += [concept_text(c) for c in seq(procedure.get("reasonCode"))]
    goals = []
    for ext in extension_values(procedure, PERTAINS_TO_GOAL):
        goal_key, _ = index.resolve(ext.get("valueReference"), f"{key} pertainsToGoal")
        if goal_key:
            goals.append(goal_key)
    return Service(
        ref=key,
        code=code,
        minutes=minutes,
        start=start,
        end=end,
        performers=tuple(performers),
        note=_notes(procedure),
        reasons=tuple(r for r in reasons if r),
        goal_refs=tuple(goals),
    )


def _goal(goal: dict) -> Goal:
    measurable = any(
        obj(t).get("measure")
        and (
            any(k.startswith("detail") for k in obj(t))
            or obj(t).get("dueDate")
            or obj(t).get("dueDuration")
        )
        for t in seq(goal.get("target"))
    )
    return Goal(
        ref=f"Goal/{text(goal.get('id'))}",
        text=concept_text(goal.get("description")),
        active=text(goal.get("lifecycleStatus")) in ("active", "accepted"),
        measurable=bool(measurable),
    )


def _measure(index: Index, observation: dict, encounter: str) -> Measure | None:
    base = index.cached(("measure", id(observation)), lambda: _measure_of(observation))
    if base is None or index.key(observation.get("encounter")) != encounter:
        return base
    return Measure(base.ref, base.code, base.value, base.when, this_visit=True)


def _measure_of(observation: dict) -> Measure | None:
    """The Observation as a measure, not yet tied to a visit (``this_visit`` False)."""
    if text(observation.get("status")) not in ("final", "amended", "corrected"):
        return None
    value = number(obj(observation.get("valueQuantity")).get("value"))
    if value is None:
        value = number(observation.get("valueInteger"))
    if value is None:
        return None
    when = (
        parse_instant(observation.get("effectiveDateTime"))
        or parse_day(observation.get("effectiveDateTime"))
        or parse_instant(obj(observation.get("effectivePeriod")).get("start"))
        or parse_instant(observation.get("issued"))
    )
    return Measure(
        ref=f"Observation/{text(observation.get('id'))}",
        code=concept_key(observation.get("code")),
        value=value,
        when=when,
        this_visit=False,
    )


def _document_text(index: Index, document: dict, key: str) -> str:
    """The document's embedded text (decoded once per index, however many visits read it)."""
    return index.cached(("text", id(document)), lambda: _decode_document(index, document, key))


def _decode_document(index: Index, document: dict, key: str) -> str:
    parts = []
    for content in seq(document.get("content")):
        attachment = obj(obj(content).get("attachment"))
        data = text(attachment.get("data"))
        if not data:
            if attachment.get("url"):
                index.note(f"{key} keeps its text at a URL; only embedded text is read")
            continue
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            index.note(f"{key} has attachment data that is not valid base64; not read")
            continue
        decoded = raw.decode("utf-8", errors="replace")
        if "html" in text(attachment.get("contentType")):
            decoded = html.unescape(_TAGS.sub(" ", decoded))
        parts.append(decoded)
    return "\n".join(parts)


def _documents_of(index: Index, encounter: str) -> list[dict]:
    return index.cached("documents", lambda: _documents_by_encounter(index)).get(encounter, [])


def _documents_by_encounter(index: Index) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for d in index.by_type.get("DocumentReference", ()):
        if text(d.get("status")) == "entered-in-error":
            continue
        for key in dict.fromkeys(index.key(e) for e in seq(obj(d.get("context")).get("encounter"))):
            found[key].append(d)
    return found


def _procedures_of(index: Index, encounter: str) -> list[dict]:
    return index.cached("procedures", lambda: _procedures_by_encounter(index)).get(encounter, [])


def _procedures_by_encounter(index: Index) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for procedure in index.by_type.get("Procedure", ()):
        found[index.key(procedure.get("encounter"))].append(procedure)
    return found


def _payer(index: Index, claims: list[dict], patient: str | None, policy: Policy):
    """(payer name, is Medicare) from the visit's Claim coverage, else the patient's Coverage."""
    coverages = []
    for claim in claims:
        for position, insurance in enumerate(seq(claim.get("insurance"))):
            _, coverage = index.resolve(
                obj(insurance).get("coverage"),
                f"Claim/{text(claim.get('id'))}.insurance[{position}]",
            )
            if coverage:
                coverages.append(coverage)
    if not coverages:
        coverages = [
            c
            for c in index.by_type.get("Coverage", ())
            if index.key(c.get("beneficiary")) == patient and text(c.get("status")) != "cancelled"
        ]
    for coverage in coverages:
        names = []
        for payor in seq(coverage.get("payor")):
            payor = obj(payor)
            org = index.by_key.get(index.key(payor) or "")
            names.append(text(obj(org).get("name")) or text(payor.get("display")))
        name = next((n for n in names if n), None)
        medicare = any(
            text(obj(c).get("system")) == policy.medicare_sopt_system
            and text(obj(c).get("code")).startswith(policy.medicare_sopt_prefix)
            for c in seq(obj(coverage.get("type")).get("coding"))
        ) or any(word in (name or "").lower() for word in policy.medicare_names)
        return name, medicare
    return None, False


def _visit_claims(index: Index, encounter: str) -> list[dict]:
    return index.cached("claims", lambda: _claims_by_encounter(index)).get(encounter, [])


def _claims_by_encounter(index: Index) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for claim in index.by_type.get("Claim", ()):
        keys = (
            index.key(e) for item in seq(claim.get("item")) for e in seq(obj(item).get("encounter"))
        )
        for key in dict.fromkeys(keys):
            found[key].append(claim)
    return found


def _earlier_visits(
    index: Index, patient: str | None, encounter: str, day: date | None, policy: Policy
) -> list[EarlierVisit]:
    earlier: dict[str, list[str]] = {}
    days: dict[str, date | None] = {}
    for other in index.by_type.get("Encounter", ()):
        key = f"Encounter/{text(other.get('id'))}"
        if key == encounter or index.key(other.get("subject")) != patient:
            continue
        other_day = parse_day(obj(other.get("period")).get("start"))
        if day and other_day and other_day > day:
            continue
        earlier[key] = []
        days[key] = other_day
    if not earlier:
        return []
    for key in earlier:
        for procedure in _procedures_of(index, key):
            note = _notes(procedure)
            if note and billing_code(procedure.get("code")) in policy.documented:
                earlier[key].append(note)
    for key in earlier:
        for document in _documents_of(index, key):
            earlier[key].append(
                _document_text(index, document, f"DocumentReference/{document.get('id')}")
            )
    return [EarlierVisit(k, days[k], tuple(t for t in v if t)) for k, v in earlier.items()]


def build_visit(
    index: Index, policy: Policy, encounter_id: str | None = None, method: str | None = None
) -> Visit:
    """The Visit for one Encounter of the index (the latest one when no id is given)."""
    enc = _pick_encounter(index, encounter_id)
    encounter = f"Encounter/{text(enc.get('id'))}"
    patient = index.key(enc.get("subject"))
    period = obj(enc.get("period"))
    day = parse_day(period.get("start"))
    if day is None:
        index.note(f"{encounter} has no period.start; the date of service is unknown")

    services = []
    for procedure in _procedures_of(index, encounter):
        if text(procedure.get("status")) != "completed":
            continue
        service = _service(index, procedure, f"Procedure/{text(procedure.get('id'))}")
        if service:
            services.append(service)

    measures = []
    for observation in index.by_type.get("Observation", ()):
        if patient and index.key(observation.get("subject")) not in (patient, None):
            continue
        measure = _measure(index, observation, encounter)
        if measure:
            measures.append(measure)

    goals = [
        index.cached(("goal", id(g)), lambda g=g: _goal(g))
        for g in index.by_type.get("Goal", ())
        if not patient or index.key(g.get("subject")) in (patient, None)
    ]

    documents = _documents_of(index, encounter)
    note_text = "\n".join(
        _document_text(index, d, f"DocumentReference/{text(d.get('id'))}") for d in documents
    )

    lines = patient_lines(index, patient)
    visit_lines = [ln for ln in lines if ln.encounter == encounter]
    other_lines = [ln for ln in lines if ln.encounter != encounter]
    claims = _visit_claims(index, encounter)
    has_billing = bool(visit_lines) or bool(claims)
    payer, medicare = _payer(index, claims, patient, policy)
    chosen = method or policy.method_for_payer(payer)

    return Visit(
        encounter=encounter,
        patient=patient,
        day=day,
        total_minutes=_length_minutes(enc),
        services=tuple(services),
        billed=tuple(visit_lines) if has_billing else None,
        goals=tuple(goals),
        measures=tuple(measures),
        note_text=note_text,
        note_signed=any(is_signed_by(index, d) for d in documents),
        has_note=bool(documents),
        payer=payer,
        medicare=medicare,
        method=chosen,
        other_lines=tuple(other_lines),
        earlier_visits=tuple(_earlier_visits(index, patient, encounter, day, policy)),
        spend=visit_spend(index, policy, patient, claims, medicare, day),
        notes=tuple(index.notes),
    )


def billed_by_code(lines: tuple[BilledLine, ...]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.code] = totals.get(line.code, 0) + line.units
    return totals
