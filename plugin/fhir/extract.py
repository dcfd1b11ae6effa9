"""Build the plain visit model from FHIR R4 resources (contract.md section 2).

The only place that knows FHIR paths, extensions and code systems. Missing or dangling data
becomes an explicit None or a note on the Visit, never an exception, except when there is no
visit to review at all (InputError).
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

from plugin.domain import (
    BilledLine,
    DayVisit,
    EarlierVisit,
    Goal,
    Measure,
    Service,
    Visit,
)
from plugin.errors import InputError
from plugin.fhir.billing import counted_claims, patient_lines
from plugin.fhir.documents import document_text
from plugin.fhir.episode import UNKNOWN_DISCIPLINE, read_episodes
from plugin.fhir.index import (
    Index,
    billing_code,
    concept_key,
    concept_text,
    has_offset,
    index_bundle,
    number,
    obj,
    parse_day,
    parse_instant,
    seq,
    start_order,
    text,
)
from plugin.fhir.practitioners import (
    DISCIPLINE_OF,
    is_signed_by,
    procedure_performers,
    role_of_reference,
)
from plugin.fhir.spend import coverage_plan, visit_spend
from plugin.policy.model import Policy

# An EHR's own procedure codes mapped to CPT/HCPCS: (system, code) -> CPT (--code-map).
CodeMap = Mapping[tuple[str, str], str]

PERTAINS_TO_GOAL = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
SOPT = "https://nahdo.org/sopt"
# Encounter.length: UCUM codes first, then the unit texts people write.
LENGTH_CODES = {"min": 1.0, "h": 60.0, "s": 1 / 60}
LENGTH_UNITS = {
    "min": 1.0,
    "mins": 1.0,
    "minute": 1.0,
    "minutes": 1.0,
    "h": 60.0,
    "hr": 60.0,
    "hrs": 60.0,
    "hour": 60.0,
    "hours": 60.0,
    "s": 1 / 60,
    "sec": 1 / 60,
    "secs": 1 / 60,
    "second": 1 / 60,
    "seconds": 1 / 60,
}
# Durations in a Procedure extension: UCUM time units to seconds.
DURATION_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}
# Minutes stated in text: "23 min", "23 minutes", "23-min".
_MINUTES = re.compile(r"\b(\d{1,3})\s*-?\s*(?:min|mins|minutes)\b", re.IGNORECASE)
_TOTAL_TIMED = re.compile(
    r"total\s+timed(?:[\s-]+code)?(?:\s+treatment)?(?:\s+(?:minutes|mins|min|time))?"
    r"\s*(?:\(\s*min(?:utes)?\s*\))?\s*(?:[:=]|was|of|is)?\s*(\d{1,3})\b",
    re.IGNORECASE,
)
_TOTAL_TREATMENT = re.compile(
    r"total\s+treatment\s+(?:time|minutes|mins)\s*(?:\(\s*min(?:utes)?\s*\))?"
    r"\s*(?:[:=]|was|of|is)?\s*(\d{1,3})\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
# Vital signs are not functional measures (FHIR R4 vital signs profile: category and LOINC).
VITAL_SIGNS_LOINC = frozenset(
    {
        "85353-1", "9279-1", "8867-4", "2708-6", "59408-5", "8310-5", "8302-2", "9843-4",
        "29463-7", "39156-5", "85354-9", "8480-6", "8462-4", "8478-0", "3150-0", "3151-8",
    }
)  # fmt: skip

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


def _length_minutes(index: Index, encounter: dict, key: str) -> int | None:
    """Encounter.length in minutes, by its UCUM code, else its unit text; unknown -> note."""
    length = encounter.get("length")
    if not isinstance(length, dict):
        return None
    value = length.get("value")
    if value.__class__ is int:  # the common case, read as number() reads it
        value = float(value)
    else:
        value = number(value)
    if value is None or value < 0:
        return None
    code, unit = length.get("code"), length.get("unit")
    code = code.strip() if isinstance(code, str) else ""
    unit = unit.strip().lower() if isinstance(unit, str) else ""
    factor = LENGTH_CODES.get(code) or LENGTH_UNITS.get(unit)
    if factor is None and not code and not unit:
        factor = 1.0
        index.note(f"{key}.length has no unit; read as minutes")
    if factor is None:
        index.note(
            f"{key}.length is in an unknown unit ({code or unit!r}); "
            "total treatment time counts as not documented"
        )
        return None
    return int(value * factor + 1e-9)


def _stated(pattern: re.Pattern, note: str) -> int | None:
    """The minutes a total-time pattern (_TOTAL_TIMED, _TOTAL_TREATMENT) states in the note."""
    # A cheap test first, which never skips a match: both patterns start with the word "total"
    # (IGNORECASE matches only the ASCII cases of its letters) and end with a digit (\d). A
    # note with neither is not searched (the search costs microseconds per note).
    lowered = note.lower()
    at = lowered.find("total")
    if at < 0:
        return None
    if len(lowered) != len(note):  # lower() lengthened a letter: positions differ
        at = 0
    if _DIGIT.search(note, at) is None:
        return None
    found = pattern.search(note, at)  # no match starts before the first "total"
    return int(found.group(1)) if found else None


def _duration_seconds(procedure: dict) -> float | None:
    """A Duration (or Quantity in a UCUM time unit) held by any extension of the Procedure."""
    for ext in seq(procedure.get("extension")):
        ext = obj(ext)
        quantity = obj(ext.get("valueDuration") or ext.get("valueQuantity"))
        value = number(quantity.get("value"))
        unit = text(quantity.get("code")) or text(quantity.get("unit")).strip().lower()
        factor = DURATION_SECONDS.get(unit) or (
            60.0 * LENGTH_UNITS[unit] if unit in LENGTH_UNITS else None
        )
        if value is not None and value >= 0 and factor:
            return value * factor
    return None


def _note_minutes(note: str, code: str | None = None) -> int | None:
    """Minutes stated in a text; with ``code``, only on a line or clause that names the code."""
    if code is None:
        found = _MINUTES.search(note)
        return int(found.group(1)) if found else None
    for line in re.split(r"[\n;]", note):
        at = line.find(code)
        if at >= 0:
            found = _MINUTES.search(line, at + len(code))
            if found:
                return int(found.group(1))
    return None


def _notes(resource: dict) -> str:
    notes = resource.get("note")
    if not isinstance(notes, list):
        return ""
    if len(notes) == 1:  # the common case: one note, its text as it is
        note = notes[0]
        found = note.get("text") if note and isinstance(note, dict) else None
        return found if isinstance(found, str) else ""
    said = []
    for note in notes:
        if note:
            found = note.get("text") if isinstance(note, dict) else None
            said.append(found if isinstance(found, str) else "")
    return " ".join(said)


def _code_of(index: Index, procedure: dict) -> str | None:
    """A Procedure's CPT/HCPCS code, read once per index."""
    codes = index.memo.get(_CODES)
    if codes is None:
        codes = index.memo[_CODES] = {}
    code = codes.get(id(procedure), _UNREAD)
    if code is _UNREAD:
        code = codes[id(procedure)] = billing_code(procedure.get("code"))
    return code


# Index.memo key of the Procedure codes _code_of has read (by id of the Procedure), and what
# stands for a Procedure not read yet (its code may be None).
_CODES = "procedure codes"
_UNREAD = object()


def _procedure_code(index: Index, procedure: dict, key: str, code_map: CodeMap) -> str | None:
    """The CPT/HCPCS code of a Procedure, mapping an EHR's own code where a map is given."""
    concept = procedure.get("code")
    code = _code_of(index, procedure)
    if code is not None:
        return code
    codings = [obj(c) for c in seq(obj(concept).get("coding"))]
    for coding in codings:
        mapped = code_map.get((text(coding.get("system")), text(coding.get("code")).strip()))
        if mapped:
            index.note(
                f"{key}: {text(coding.get('system'))}|{text(coding.get('code'))} read as "
                f"{mapped} through the code map"
            )
            return mapped.upper()
    named = next(
        (f"{text(c.get('system'))}|{text(c.get('code'))}" for c in codings if c.get("code")),
        concept_text(concept) or "no code",
    )
    index.note(
        f"{key} has no CPT/HCPCS code ({named}); not reviewed (map it with --code-map "
        "or [ehr.codes] map)"
    )
    return None


def _instant_at(index: Index, value: object, key: str, field: str) -> datetime | None:
    """``index.instant`` of a Procedure's field; the place (``key`` + ``field``) is spelt out
    only when a note names it (a time without an offset, or no valid dateTime)."""
    if not isinstance(value, str):
        return None
    if has_offset(value):  # the common case: read without building the place's name
        moment = parse_instant(value)
    else:
        moment = index.instant(value, key + field)
    # A date alone is a valid dateTime with no time of day; anything else unread is named.
    if moment is None and ("T" in value or parse_day(value) is None):
        index.note(f"{key}{field} is not a valid dateTime; its time is not read")
    return moment


def _service(
    index: Index, procedure: dict, key: str, visit_note: str, code_map: CodeMap
) -> Service | None:
    code = _code_of(index, procedure)
    if code is None:
        code = _procedure_code(index, procedure, key, code_map)  # through the code map
        if code is None:
            return None
    period = procedure.get("performedPeriod")
    start = end = None
    if isinstance(period, dict):
        start = _instant_at(index, period.get("start"), key, ".performedPeriod.start")
        end = _instant_at(index, period.get("end"), key, ".performedPeriod.end")
    if start is None:
        start = _instant_at(index, procedure.get("performedDateTime"), key, ".performedDateTime")
    seconds, source = None, "period"
    if start and end:
        seconds = (end - start).total_seconds()
        if seconds < 0:
            index.note(f"{key} ends before it starts; its minutes are not counted")
            start = end = None
            seconds = None
    note = _notes(procedure)
    if seconds is None:
        duration = _duration_seconds(procedure)
        if duration is not None:
            seconds, source = duration, "duration"
            if start is not None:
                end = start + (end - start if end else timedelta(seconds=duration))
    if seconds is None:
        stated = _note_minutes(note)
        if stated is not None:
            seconds, source = stated * 60.0, "procedure note"
        else:
            stated = _note_minutes(visit_note, code)
            if stated is not None:
                seconds, source = stated * 60.0, "visit note"
        if seconds is not None and start is not None and end is None:
            end = start + timedelta(seconds=seconds)
    if seconds is not None and source != "period":
        index.note(f"{key} ({code}): {int(seconds // 60)} minutes read from its {source}")
    performers = procedure_performers(index, procedure.get("performer"), key)
    reasons = []
    refs = procedure.get("reasonReference")
    if refs and isinstance(refs, list):
        for position, ref in enumerate(refs):
            _, condition = index.resolve(ref, f"{key}.reasonReference[{position}]")
            if condition:
                reasons.append(concept_text(condition.get("code")))
    concepts = procedure.get("reasonCode")
    if concepts and isinstance(concepts, list):
        reasons += [concept_text(c) for c in concepts]
    goals = []
    extensions = procedure.get("extension")
    for ext in extensions if isinstance(extensions, list) else ():
        url = ext.get("url") if isinstance(ext, dict) else None
        if not isinstance(url, str) or not url.endswith(PERTAINS_TO_GOAL):
            continue
        reference = ext.get("valueReference")
        goal_key = index.key(reference)
        if goal_key is None:
            continue
        if goal_key not in index.by_key:
            index.resolve(reference, f"{key} pertainsToGoal")  # notes the dangling reference
        goals.append(goal_key)
    # Positional, in the order of Service's fields: a class called with keywords builds a dict.
    return Service(
        key,  # ref
        code,
        int(seconds // 60) if seconds is not None else None,  # minutes
        start if end else None,
        end,
        performers,
        note,
        tuple(r for r in reasons if r) if reasons else (),  # reasons
        tuple(goals),  # goal_refs
        seconds,
        source,  # minutes_from
    )


def _no_timed_overlap(services: list[Service], policy: Policy) -> bool:
    periods = sorted(
        (s.start, s.end) for s in services if s.code in policy.timed and s.start and s.end
    )
    return all(later[0] >= earlier[1] for earlier, later in zip(periods, periods[1:], strict=False))


def count_once(services: list[Service], policy: Policy) -> list[Service]:
    """Each minute counted for one timed code only (contract §2, rules minutes-overlap,
    group-overlap, untimed-overlap): a timed service's counted seconds leave out what an
    earlier-starting timed service, group therapy or a supervised modality already covers."""
    timed, group, untimed_exclusive = policy.timed, policy.group, policy.untimed_exclusive
    periods = []  # the timed services' periods, while nothing else is to be left out
    for service in services:
        start, end = service.start, service.end
        if start and end:
            if service.code in group or service.code in untimed_exclusive:
                break
            if service.code in timed:
                periods.append((start, end))
    else:
        if len(periods) < 2:
            return services
        periods.sort()
        reach = periods[0][0]  # the end of the period before (none before the first)
        for start, end in periods:
            if start < reach:
                break
            reach = end
        else:
            return services
    exclusive = sorted(
        (s.start, s.end)
        for s in services
        if s.start and s.end and (s.code in policy.group or s.code in policy.untimed_exclusive)
    )
    if not exclusive and _no_timed_overlap(services, policy):
        return services
    merged: list[list] = []
    for start, end in exclusive:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    starts = [m[0] for m in merged]
    timed = sorted(
        (i for i, s in enumerate(services) if s.code in policy.timed and s.start and s.end),
        key=lambda i: services[i].start,
    )
    result = list(services)
    reach = None  # the latest end of the timed services seen so far
    for i in timed:
        service = services[i]
        start, end = service.start, service.end
        free_from = max(start, reach) if reach else start
        counted = max(0.0, (end - free_from).total_seconds())
        if counted and merged:
            at = max(0, bisect.bisect_right(starts, free_from) - 1)
            while at < len(merged) and merged[at][0] < end:
                shared = (min(end, merged[at][1]) - max(free_from, merged[at][0])).total_seconds()
                counted -= max(0.0, shared)
                at += 1
        reach = max(reach, end) if reach else end
        if service.seconds is not None and counted < service.seconds:
            result[i] = replace(service, seconds=max(0.0, counted))
    return result


# A measurable target stated in a goal's text (as Epic and Oracle send goals): a number to
# reach and a time frame ("Berg 41/56 to 48/56 within 6 weeks", "... by 04/09/2026").
_GOAL_NUMBER = re.compile(r"\d")
_GOAL_TIMEFRAME = re.compile(
    r"\b(?:within|in|by|over)\s+(?:\d+|one|two|three|four|six|eight|twelve)\s*"
    r"(?:days?|weeks?|wks?|months?|visits?|sessions?)\b|\bby\s+\d{1,4}[/-]\d{1,2}",
    re.IGNORECASE,
)


def _goal(goal: dict) -> Goal:
    measurable = dated = False  # a target with a measure and a detail or due date; any due date
    targets = goal.get("target")
    for target in targets if isinstance(targets, list) else ():
        if not isinstance(target, dict):
            continue
        due = target.get("dueDate") or target.get("dueDuration")
        if due:
            dated = True
        if not measurable and target.get("measure"):
            measurable = bool(due) or any(k.startswith("detail") for k in target)
    description = concept_text(goal.get("description"))
    if not measurable:
        # Vendors state the measure and its target in the text, the due date in the target.
        measurable = bool(_GOAL_NUMBER.search(description)) and (
            dated or bool(_GOAL_TIMEFRAME.search(description))
        )
    goal_id = goal.get("id")
    ref = "Goal/" + goal_id if isinstance(goal_id, str) else "Goal/"
    active = goal.get("lifecycleStatus") in ("active", "accepted")
    return Goal(ref, description, active, measurable)


def _patient_goals(index: Index, patient: str | None) -> list[Goal]:
    """The patient's goals and those naming no subject (all goals without a patient), read
    once per index and patient."""
    memo = index.memo
    goals = memo.get(("goals", patient))
    if goals is not None:
        return goals
    goals = []
    for goal in index.by_type.get("Goal", ()):
        if not patient or index.key(goal.get("subject")) in (patient, None):
            goals.append(_goal(goal))
    memo["goals", patient] = goals
    return goals


def _visit_measures(index: Index, patient: str | None, encounter: str) -> list[Measure]:
    """This visit's measures, and for each measure code the patient's others that can show
    progress (the earliest dated one, and one undated): enough for doc-no-progress, and the
    same few items however many Observations a patient has."""
    memo = index.memo
    read = memo.get(("patient-measures", patient))
    if read is None:
        read = memo["patient-measures", patient] = _patient_measures(index, patient)
    by_encounter, history = read
    measures = []
    own = by_encounter.get(encounter)
    if own is None:  # no measure taken at this visit: the history as it is
        for ref, code, value, when in history:
            measures.append(Measure(ref, code, value, when, False))
        return measures
    refs = set()
    for _, (ref, code, value, when) in own:
        measures.append(Measure(ref, code, value, when, True))
        refs.add(ref)
    for ref, code, value, when in history:
        if ref not in refs:
            measures.append(Measure(ref, code, value, when, False))
    return measures


# An Observation read as a measure: (ref, code, value, when); a Measure once tied to a visit.
ReadMeasure = tuple[str, str, float, date | datetime | None]


def _patient_measures(
    index: Index, patient: str | None
) -> tuple[dict[str | None, list[tuple[datetime | None, ReadMeasure]]], list[ReadMeasure]]:
    """The patient's measures by encounter, each with the instant it sorts by (None when
    undated), and the history ``_visit_measures`` adds to a visit's own."""
    by_encounter: dict[str | None, list[tuple[datetime | None, ReadMeasure]]] = {}
    earliest: dict[str, tuple[datetime, ReadMeasure]] = {}
    undated: dict[str, ReadMeasure] = {}
    key_of = index.key
    for observation in index.by_type.get("Observation", ()):
        if patient and key_of(observation.get("subject")) not in (patient, None):
            continue
        read = _measure_of(observation)
        if read is None:
            continue
        code, when = read[1], read[3]
        if when is None:
            moment = None
        elif isinstance(when, datetime) and when.tzinfo is not None:
            moment = when  # an instant (the common case) sorts as it is
        else:
            moment = _sortable(when)
        encounter = observation.get("encounter")
        key = None if encounter is None else key_of(encounter)
        pairs = by_encounter.get(key)
        if pairs is None:
            by_encounter[key] = [(moment, read)]
        else:
            pairs.append((moment, read))
        if moment is None:
            if code not in undated:
                undated[code] = read
        else:
            best = earliest.get(code)
            if best is None or moment < best[0]:
                earliest[code] = (moment, read)
            # a measure taken at a visit is also that visit's; kept by encounter above
    # Per code: the earliest dated measure and, for a visit that is itself the earliest, the
    # next one would not be earlier; keep the two earliest so either visit can compare.
    second: dict[str, tuple[datetime, ReadMeasure]] = {}
    for pairs in by_encounter.values():
        for moment, read in pairs:
            if moment is None or read is earliest[read[1]][1]:
                continue
            other = second.get(read[1])
            if other is None or moment < other[0]:
                second[read[1]] = (moment, read)
    history = []
    for _, read in earliest.values():
        history.append(read)
    for _, read in second.values():
        history.append(read)
    history += undated.values()
    return by_encounter, history


def _sortable(when: date | datetime) -> datetime:
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime(when.year, when.month, when.day, tzinfo=UTC)


def _measure_of(observation: dict) -> ReadMeasure | None:
    """The Observation as a measure (ref, code, value, when), not yet tied to a visit."""
    if observation.get("status") not in ("final", "amended", "corrected"):
        return None
    quantity = observation.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if value.__class__ is int:  # the common case, read as number() reads it
        value = float(value)
    else:
        value = number(value)
    if value is None:
        value = number(observation.get("valueInteger"))
    if value is None:
        return None
    if _is_vital_sign(observation):
        return None
    effective = observation.get("effectiveDateTime")
    when = parse_instant(effective) or parse_day(effective)
    if when is None:
        period = observation.get("effectivePeriod")
        when = parse_instant(period.get("start") if isinstance(period, dict) else None)
    if when is None:
        when = parse_instant(observation.get("issued"))
    observation_id = observation.get("id")
    ref = "Observation/" + observation_id if isinstance(observation_id, str) else "Observation/"
    return ref, concept_key(observation.get("code")), value, when


def _is_vital_sign(observation: dict) -> bool:
    """A vital sign (temperature, pulse, blood pressure, ...) is not a functional measure."""
    categories = observation.get("category")
    if isinstance(categories, list):
        for category in categories:
            codings = category.get("coding") if isinstance(category, dict) else None
            if isinstance(codings, list):
                for coding in codings:
                    if isinstance(coding, dict) and coding.get("code") == "vital-signs":
                        return True
    concept = observation.get("code")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if isinstance(codings, list):
        for coding in codings:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and code in VITAL_SIGNS_LOINC:
                return True
    return False


def _document_text(index: Index, document: dict, key: str) -> str:
    """The document's text, embedded or in a Binary of the index (plugin.fhir.documents),
    decoded once per index, however many visits read it."""
    memo_key = ("text", id(document))
    return index.cached(memo_key, document_text, index, document, key)


def _documents_of(index: Index, encounter: str) -> list[dict]:
    return index.cached("documents", _documents_by_encounter, index).get(encounter, [])


def _documents_by_encounter(index: Index) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for d in index.by_type.get("DocumentReference", ()):
        if d.get("status") == "entered-in-error":
            continue
        context = d.get("context")
        references = context.get("encounter") if isinstance(context, dict) else None
        if not isinstance(references, list):
            continue
        if len(references) == 1:  # the common case: one encounter, nothing to deduplicate
            found[index.key(references[0])].append(d)
            continue
        for key in dict.fromkeys(index.key(e) for e in references):
            found[key].append(d)
    return found


def _procedures_of(index: Index, encounter: str) -> list[dict]:
    return procedures_by_encounter(index).get(encounter, [])


def procedures_by_encounter(index: Index) -> Mapping[str | None, list[dict]]:
    """The index's Procedures by the key of their encounter, made once per index."""
    return index.cached("procedures", _procedures_by_encounter, index)


def _procedures_by_encounter(index: Index) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for procedure in index.by_type.get("Procedure", ()):
        found[index.key(procedure.get("encounter"))].append(procedure)
    return found


def _payer(index: Index, claims: list[dict], patient: str | None, policy: Policy):
    """(payer name, is Medicare) from the visit's Claim coverage, else the patient's Coverage."""
    coverage = None
    for claim in claims:
        insurances = claim.get("insurance")
        if not isinstance(insurances, list):
            continue
        for position, insurance in enumerate(insurances):
            reference = insurance.get("coverage") if isinstance(insurance, dict) else None
            found = index.by_key.get(index.key(reference) or "")
            if found is None:  # resolve notes a dangling reference
                where = f"Claim/{text(claim.get('id'))}.insurance[{position}]"
                index.resolve(reference, where)
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
            return None, False
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
        lowered = (name or "").lower()
        for word in policy.medicare_names:
            if word in lowered:
                medicare = True
                break
    return name, medicare


def _visit_claims(index: Index, encounter: str) -> list[dict]:
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


def _patient_encounters(index: Index, patient: str | None) -> list[tuple[float, str, date | None]]:
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


def _earlier_visits(
    index: Index, patient: str | None, encounter: str, day: date | None, policy: Policy
) -> list[EarlierVisit]:
    earlier: dict[str, list[str]] = {}
    days: dict[str, date | None] = {}
    for _, key, other_day in _patient_encounters(index, patient):
        if key == encounter:
            continue
        if day and other_day and other_day > day:
            continue
        earlier[key] = []
        days[key] = other_day
    if not earlier:
        return []
    documented = policy.documented
    visits = []
    for key, texts in earlier.items():  # each visit's procedure notes, then its documents
        for procedure in _procedures_of(index, key):
            note = _notes(procedure)
            if note and _code_of(index, procedure) in documented:
                texts.append(note)
        for document in _documents_of(index, key):
            found = _document_text(index, document, f"DocumentReference/{document.get('id')}")
            if found:
                texts.append(found)
        visits.append(EarlierVisit(key, days[key], tuple(texts)))
    return visits


def _visit_note(index: Index, encounter: str) -> tuple[list[dict], str]:
    documents = _documents_of(index, encounter)
    if not documents:
        return documents, ""
    if len(documents) == 1:  # one note (the common case) is its own text
        document = documents[0]
        document_id = document.get("id")
        key = f"DocumentReference/{document_id if isinstance(document_id, str) else ''}"
        return documents, _document_text(index, document, key)
    texts = []
    for document in documents:
        document_id = document.get("id")
        key = f"DocumentReference/{document_id if isinstance(document_id, str) else ''}"
        texts.append(_document_text(index, document, key))
    return documents, "\n".join(texts)


def _services_of(
    index: Index, policy: Policy, encounter: str, note_text: str, code_map: CodeMap
) -> list[Service]:
    """The encounter's completed (or stopped) services, each minute counted once (read once
    per index, encounter and code map)."""
    memo_key = ("services", encounter, id(code_map))
    found = index.memo.get(memo_key)
    if found is not None:
        return found
    services = []
    for procedure in _procedures_of(index, encounter):
        if procedure.get("status") not in ("completed", "stopped"):
            continue
        rid = procedure.get("id")
        key = "Procedure/" + rid if isinstance(rid, str) else "Procedure/"
        service = _service(index, procedure, key, note_text, code_map)
        if service:
            services.append(service)
    found = index.memo[memo_key] = count_once(services, policy)
    return found


def _assigned_lines(index: Index, patient: str | None, lines: list[BilledLine]) -> list[BilledLine]:
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
        given = first_of_day(_patient_encounters(index, patient), procedures_by_encounter(index))
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


def _encounter_disciplines(
    index: Index, policy: Policy, encounter: str, lines: list[BilledLine]
) -> set[str]:
    """The therapy disciplines of another encounter, cheaply (no minutes, no notes): the roles
    of who performed its therapy procedures, and its lines' GP/GO/GN."""
    memo_key = ("disciplines", encounter)
    found = index.memo.get(memo_key)
    if found is not None:
        return found
    modifiers = policy.discipline_modifiers
    found = set()
    for line in lines:
        if line.encounter == encounter:
            for m in line.modifiers:
                if m in modifiers:
                    found.add(modifiers[m])
    therapy_codes = policy.therapy_codes
    for procedure in _procedures_of(index, encounter):
        if procedure.get("status") not in ("completed", "stopped"):
            continue
        if _code_of(index, procedure) not in therapy_codes:
            continue
        items = procedure.get("performer")
        for item in items if isinstance(items, list) else ():
            role = role_of_reference(index, item.get("actor") if isinstance(item, dict) else None)
            if role in DISCIPLINE_OF:
                found.add(DISCIPLINE_OF[role])
    index.memo[memo_key] = found
    return found


def _disciplines(policy: Policy, services: list[Service], lines: list[BilledLine]) -> set[str]:
    modifiers = policy.discipline_modifiers
    found = set()
    for line in lines:
        for m in line.modifiers:
            if m in modifiers:
                found.add(modifiers[m])
    for service in services:
        for p in service.performers:
            if p.furnished and p.discipline in _THERAPY_DISCIPLINES:
                found.add(p.discipline)
    return found


# The disciplines a furnishing performer gives a visit (the values of DISCIPLINE_OF).
_THERAPY_DISCIPLINES = frozenset(DISCIPLINE_OF.values())


def build_visit(
    index: Index,
    policy: Policy,
    encounter_id: str | None = None,
    method: str | None = None,
    code_map: CodeMap | None = None,
) -> Visit:
    """The Visit for one Encounter of the index (the latest one when no id is given)."""
    code_map = code_map or {}
    enc = _pick_encounter(index, encounter_id)
    encounter = f"Encounter/{text(enc.get('id'))}"
    patient = index.key(enc.get("subject"))
    period = obj(enc.get("period"))
    day = index.local_day(period.get("start"))
    if day is None:
        index.note(f"{encounter} has no period.start; the date of service is unknown")

    documents, note_text = _visit_note(index, encounter)
    services = _services_of(index, policy, encounter, note_text, code_map)

    measures = _visit_measures(index, patient, encounter)

    goals = _patient_goals(index, patient)

    total_minutes = _length_minutes(index, enc, encounter)
    if total_minutes is None:
        total_minutes = _stated(_TOTAL_TREATMENT, note_text)
        if total_minutes is not None:
            index.note(f"total treatment time {total_minutes} minutes read from the visit note")
    stated_timed = _stated(_TOTAL_TIMED, note_text)

    raw_lines, unreadable = patient_lines(index, patient)
    lines = _assigned_lines(index, patient, raw_lines)
    visit_lines = [ln for ln in lines if ln.encounter == encounter]
    other_lines = [ln for ln in lines if ln.encounter != encounter]
    claims = _visit_claims(index, encounter)
    has_billing = bool(visit_lines) or bool(claims)
    payer, medicare = _payer(index, claims, patient, policy)
    chosen = method or policy.method_for_payer(payer)
    unread = tuple(
        ref
        for ref, where, when in unreadable
        if where == encounter or (where is None and day is not None and when == day)
    )

    mine = _disciplines(policy, services, visit_lines)
    same_day = []
    if day is not None:
        for _, key, other_day in _patient_encounters(index, patient):
            if key == encounter or other_day != day:
                continue
            _, other_note = _visit_note(index, key)
            other_services = _services_of(index, policy, key, other_note, code_map)
            other_billed = [ln for ln in lines if ln.encounter == key]
            if not other_services and not other_billed:
                continue
            theirs = _disciplines(policy, other_services, other_billed)
            if mine and theirs and not mine & theirs:
                continue
            same_day.append(DayVisit(key, tuple(other_services), tuple(other_billed)))

    required = medicare or any(p in (payer or "").lower() for p in policy.episode.payers)
    episodes: tuple = ()
    if required:

        def disciplines_of(key: str) -> set[str]:
            found = _encounter_disciplines(index, policy, key, lines)
            if found:
                return found
            # A therapy visit whose discipline is not said (Epic: no charges, no credential)
            _, other_note = _visit_note(index, key)
            other = _services_of(index, policy, key, other_note, code_map)
            billed = any(ln.encounter == key for ln in lines)
            return {UNKNOWN_DISCIPLINE} if other or billed else set()

        episodes = read_episodes(
            index,
            policy,
            patient,
            day,
            mine,
            _patient_encounters(index, patient),
            disciplines_of,
            lines,
        )

    return Visit(
        encounter=encounter,
        patient=patient,
        day=day,
        total_minutes=total_minutes,
        services=tuple(services),
        billed=tuple(visit_lines) if has_billing or unread else None,
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
        stated_timed_minutes=stated_timed,
        same_day=tuple(same_day),
        unreadable=unread,
        episodes=episodes,
        episode_required=required,
    )
