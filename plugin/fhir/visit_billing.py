"""A visit's share of the patient's billing: its Claims, the lines given to it by date of
service, and who pays for it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from plugin.domain import BilledLine
from plugin.fhir.billing import counted_claims
from plugin.fhir.encounters import first_of_day, patient_encounters
from plugin.fhir.index import Index, obj, seq, text
from plugin.fhir.procedures import procedures_by_encounter
from plugin.fhir.spend import coverage_plan
from plugin.policy.model import Policy


def visit_payer(index: Index, claims: list[dict], patient: str | None, policy: Policy):
    """(payer name, is Medicare, why unread) from the visit's Claim coverage (a contained one
    too), else the patient's Coverage, else the payer a Claim names by ``display`` alone (as
    Synthea writes ``Claim.insurance.coverage``). ``why unread`` names a Coverage a Claim refers
    to that is not in the record read (the payer is then unknown, not absent: contract §2); ""
    otherwise."""
    coverage = None
    named = None  # (where, the display) of a Claim coverage given by display only
    missing = ""
    for claim in claims:
        insurances = claim.get("insurance")
        if not isinstance(insurances, list):
            continue
        for position, insurance in enumerate(insurances):
            reference = insurance.get("coverage") if isinstance(insurance, dict) else None
            found = index.by_key.get(index.key(reference) or "")
            where = f"Claim/{text(claim.get('id'))}.insurance[{position}]"
            if found is None:  # resolve notes a dangling reference
                key, _ = index.resolve(reference, where)
                if key and not missing:
                    missing = f"{where} refers to {key}, which is not in the record read"
                display = text(obj(reference).get("display")).strip()
                if display and named is None and index.key(reference) is None:
                    named = (where, display)
            elif coverage is None:
                coverage = found
    if coverage is None:
        for candidate in index.by_type.get("Coverage", ()):
            if (
                index.key(candidate.get("beneficiary")) == patient
                and text(candidate.get("status")) != "cancelled"
            ):
                coverage = candidate
                break
        else:
            if named is None:
                return None, False, missing
            where, display = named
            index.note(f"{where} names its payer only by display ({display!r}); read as the payer")
            return display, _is_medicare_name(display, policy), ""

    names, types = coverage_plan(index, coverage)
    name = None
    for payor, payor_name in zip(seq(coverage.get("payor")), names, strict=True):
        if payor_name and isinstance(payor, dict):  # a payor given as a bare string names none
            name = payor_name
            break
    medicare = False
    system, prefix = policy.medicare_sopt_system, policy.medicare_sopt_prefix
    for coding_system, code in types:
        if coding_system == system and code.startswith(prefix):
            medicare = True
            break
    if not medicare:
        medicare = _is_medicare_name(name or "", policy)
    return name, medicare, ""


def _is_medicare_name(name: str, policy: Policy) -> bool:
    """Whether a payer's name is one the payer table reads as Medicare."""
    lowered = name.lower()
    return any(word in lowered for word in policy.medicare_names)


def visit_claims(index: Index, encounter: str) -> list[dict]:
    """The Claims whose lines count and whose items name this encounter."""
    return index.cached("claims", _claims_by_encounter, index).get(encounter, [])


def _claims_by_encounter(index: Index) -> dict[str, list[dict]]:
    """The Claims whose lines count, by each encounter their items name."""
    found: dict[str, list[dict]] = defaultdict(list)
    for claim, _, _, encounters in counted_claims(index):
        named: dict[str, None] = {}  # each encounter once, in order
        for keys in encounters:
            for key in keys:
                named[key] = None
        for key in named:
            found[key].append(claim)
    return found


def assigned_lines(index: Index, patient: str | None, lines: list[BilledLine]) -> list[BilledLine]:
    """Lines of Claims that name no encounter, given to the patient's first encounter on their
    date of service (the day is pooled anyway, §2b); a line with no such encounter stays out."""

    def make() -> list[BilledLine]:
        undated = False
        for line in lines:
            if line.encounter is None and line.by_date:
                undated = True
                break
        if not undated:
            return lines
        given = first_of_day(patient_encounters(index, patient), procedures_by_encounter(index))
        result = []
        for line in lines:
            if line.encounter is None and line.by_date:
                target = given.get(line.day) if line.day else None
                claim = line.ref.split("#")[0]
                if target is None:
                    index.note(f"{claim} names no encounter and no visit matches its date")
                    result.append(line)
                    continue
                index.note(f"{claim} names no encounter; matched by date of service {line.day}")
                line = replace(line, encounter=target)
            result.append(line)
        return result

    key = ("assigned-lines", patient)  # read once per patient: an audit has a year of visits
    return index.cached(key, make)
