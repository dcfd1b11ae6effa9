"""A visit's services from its Procedures: the CPT/HCPCS code, when and how long, who
performed them, why, and toward which goals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta

from plugin.domain import Service
from plugin.fhir.index import (
    Index,
    billing_code,
    concept_text,
    has_offset,
    obj,
    parse_day,
    parse_instant,
    seq,
    text,
)
from plugin.fhir.minutes import count_once, duration_seconds, note_minutes
from plugin.fhir.practitioners import procedure_performers
from plugin.policy.model import Policy

# An EHR's own procedure codes mapped to CPT/HCPCS: (system, code) -> CPT (--code-map).
CodeMap = Mapping[tuple[str, str], str]

PERTAINS_TO_GOAL = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"


def procedure_notes(resource: dict) -> str:
    """The text of the resource's notes (Annotation), joined by spaces."""
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


def code_of(index: Index, procedure: dict) -> str | None:
    """A Procedure's CPT/HCPCS code, read once per index."""
    codes = index.memo.get(_CODES)
    if codes is None:
        codes = index.memo[_CODES] = {}
    code = codes.get(id(procedure), _UNREAD)
    if code is _UNREAD:
        code = codes[id(procedure)] = billing_code(procedure.get("code"))
    return code


# Index.memo key of the Procedure codes code_of has read (by id of the Procedure), and what
# stands for a Procedure not read yet (its code may be None).
_CODES = "procedure codes"
_UNREAD = object()


def _procedure_code(index: Index, procedure: dict, key: str, code_map: CodeMap) -> str | None:
    """The CPT/HCPCS code of a Procedure, mapping an EHR's own code where a map is given."""
    concept = procedure.get("code")
    code = code_of(index, procedure)
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
    index: Index,
    procedure: dict,
    key: str,
    visit_note: str,
    code_map: CodeMap,
    day: date | None = None,
) -> Service | None:
    code = code_of(index, procedure)
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
    note = procedure_notes(procedure)
    if seconds is None:
        duration = duration_seconds(procedure)
        if duration is not None:
            seconds, source = duration, "duration"
            if start is not None:
                end = start + (end - start if end else timedelta(seconds=duration))
    if seconds is None:
        stated = note_minutes(note)
        if stated is not None:
            seconds, source = stated * 60.0, "procedure note"
        else:
            stated = note_minutes(visit_note, code)
            if stated is not None:
                seconds, source = stated * 60.0, "visit note"
        if seconds is not None and start is not None and end is None:
            end = start + timedelta(seconds=seconds)
    if seconds is not None and source != "period":
        index.note(f"{key} ({code}): {int(seconds // 60)} minutes read from its {source}")
    performers = procedure_performers(index, procedure.get("performer"), key, day)
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


def services_of(
    index: Index, policy: Policy, encounter: str, note_text: str, code_map: CodeMap
) -> list[Service]:
    """The encounter's completed (or stopped) services, each minute counted once (read once
    per index, encounter and code map)."""
    memo_key = ("services", encounter, id(code_map))
    found = index.memo.get(memo_key)
    if found is not None:
        return found
    services = []
    day = encounter_day(index, encounter)  # who furnished it: the role in force on this date
    for procedure in procedures_of(index, encounter):
        if procedure.get("status") not in ("completed", "stopped"):
            continue
        rid = procedure.get("id")
        key = "Procedure/" + rid if isinstance(rid, str) else "Procedure/"
        service = _service(index, procedure, key, note_text, code_map, day)
        if service:
            services.append(service)
    found = index.memo[memo_key] = count_once(services, policy)
    return found


def encounter_day(index: Index, encounter: str) -> date | None:
    """The date of service of an encounter of the index (its ``period.start``), if it has one."""
    found = index.by_key.get(encounter)
    period = found.get("period") if found is not None else None
    return index.local_day(period.get("start")) if isinstance(period, dict) else None


def procedures_of(index: Index, encounter: str) -> list[dict]:
    """The index's Procedures of this encounter, whatever their status."""
    return procedures_by_encounter(index).get(encounter, [])


def procedures_by_encounter(index: Index) -> Mapping[str | None, list[dict]]:
    """The index's Procedures by the key of their encounter, made once per index."""
    return index.cached("procedures", _procedures_by_encounter, index)


def _procedures_by_encounter(index: Index) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for procedure in index.by_type.get("Procedure", ()):
        found[index.key(procedure.get("encounter"))].append(procedure)
    return found
