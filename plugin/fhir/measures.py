"""What shows a patient's progress: their goals (Goal) and functional measures (Observation)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from plugin.domain import Goal, Measure
from plugin.fhir.index import Index, concept_key, concept_text, number, parse_day, parse_instant

# Vital signs are not functional measures (FHIR R4 vital signs profile: category and LOINC).
VITAL_SIGNS_LOINC = frozenset(
    {
        "85353-1", "9279-1", "8867-4", "2708-6", "59408-5", "8310-5", "8302-2", "9843-4",
        "29463-7", "39156-5", "85354-9", "8480-6", "8462-4", "8478-0", "3150-0", "3151-8",
    }
)  # fmt: skip


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


def patient_goals(index: Index, patient: str | None) -> list[Goal]:
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


def visit_measures(index: Index, patient: str | None, encounter: str) -> list[Measure]:
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
    undated), and the history ``visit_measures`` adds to a visit's own."""
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
