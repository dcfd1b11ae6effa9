"""Which Encounter a review reads, and the patient's encounters in the order of their starts."""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import date
from operator import itemgetter

from plugin.errors import InputError
from plugin.fhir.index import Index, has_offset, parse_instant, start_order, text


def encounter_ids(index: Index) -> list[str]:
    """The ids of the index's Encounters, in the order listed."""
    return [text(e.get("id")) for e in index.by_type.get("Encounter", ())]


def pick_encounter(index: Index, encounter_id: str | None) -> dict:
    """The Encounter with this id, else the latest one; InputError when there is none."""
    encounters = index.by_type.get("Encounter", [])
    if not encounters:
        raise InputError("the Bundle holds no Encounter to review")
    if encounter_id is not None:
        for encounter in encounters:
            if text(encounter.get("id")) == encounter_id:
                return encounter
        raise InputError(f"no Encounter with id {encounter_id!r} in the Bundle")
    if len(encounters) == 1:
        # Nothing to compare; its start is read only when that notes a time without an offset.
        only = encounters[0]
        period = only.get("period")
        raw = period.get("start") if isinstance(period, dict) else None
        if isinstance(raw, str) and "T" in raw and not has_offset(raw):
            _start_key(index, only)
        return only
    # The latest by the instant of period.start (not by string: offsets differ); an Encounter
    # without a start sorts first, and of equal starts the first listed is taken.
    latest, latest_start = encounters[0], _start_key(index, encounters[0])
    for encounter in encounters[1:]:
        start = _start_key(index, encounter)
        if start > latest_start:
            latest, latest_start = encounter, start
    return latest


def _start_key(index: Index, encounter: dict) -> float:
    """The instant an Encounter starts, as a sortable number; read once per index."""
    memo_key = ("start", id(encounter))
    return index.cached(memo_key, _read_start, index, encounter)


def _read_start(index: Index, encounter: dict) -> float:
    period = encounter.get("period")
    raw = period.get("start") if isinstance(period, dict) else None
    if not isinstance(raw, str):
        return float("-inf")
    if "T" in raw and not has_offset(raw):  # read in the organisation's zone, with a note
        moment = index.instant(raw, f"Encounter/{text(encounter.get('id'))}.period.start")
    else:
        moment = parse_instant(raw)  # None for a date alone: start_order reads it
    return start_order(raw, moment)


def first_of_day(
    encounters: Iterable[tuple[float, str, date | None]], with_procedures: Container[str]
) -> dict[date, str]:
    """The encounter a line naming none is given to on each date: of the (start, key, date)
    given earliest first, the first of the date with a Procedure, else the first of the date.
    The audit's choice of encounters to review (plugin.fhir.therapy) reads it the same way."""
    found: dict[date, str] = {}
    encounters = list(encounters)
    for _, key, day in encounters:
        if day is not None and day not in found and key in with_procedures:
            found[day] = key
    for _, key, day in encounters:
        if day is not None:
            found.setdefault(day, key)
    return found


def patient_encounters(index: Index, patient: str | None) -> list[tuple[float, str, date | None]]:
    """(start instant, Encounter key, date of service) of each of the patient's encounters,
    earliest first; read once per index and patient."""
    memo_key = ("encounters", patient)
    return index.cached(memo_key, _encounters_of, index, patient)


def _encounters_of(index: Index, patient: str | None) -> list[tuple[float, str, date | None]]:
    found = []
    key_of, local_day = index.key, index.local_day
    for other in index.by_type.get("Encounter", ()):
        if key_of(other.get("subject")) != patient:
            continue
        other_id = other.get("id")
        key = "Encounter/" + other_id if isinstance(other_id, str) else "Encounter/"
        period = other.get("period")
        day = local_day(period.get("start") if isinstance(period, dict) else None)
        found.append((other, key, day))
    if len(found) == 1:  # the common case: nothing to order
        _, key, day = found[0]
        return [(0.0, key, day)]
    ordered = []
    for other, key, day in found:
        ordered.append((_start_key(index, other), key, day))
    ordered.sort(key=itemgetter(0, 1))  # by start, then key (a day may be None)
    return ordered
