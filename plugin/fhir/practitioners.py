"""Who furnished a service: discipline and assistant status from Practitioner/PractitionerRole."""

from __future__ import annotations

from datetime import date

from plugin.domain import Performer
from plugin.fhir.index import Index, obj, parse_day, seq, text

NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
# NUCC taxonomy: exact codes first, then the specialty prefixes of the same discipline.
NUCC_EXACT = {
    "225100000X": "PT",
    "225200000X": "PTA",
    "225X00000X": "OT",
    "224Z00000X": "OTA",
    "235Z00000X": "SLP",
}
NUCC_PREFIX = (
    ("2251", "PT"),
    ("2252", "PTA"),
    ("225X", "OT"),
    ("224Z", "OTA"),
    ("235Z", "SLP"),
    # Who certifies a plan of care: the NUCC groupings Allopathic & Osteopathic Physicians
    # (20..), Nurse Practitioner (363L), Physician Assistant (363A) and Clinical Nurse
    # Specialist (364S). US Core's PractitionerRole example names its physician 208D00000X.
    ("20", "MD"),
    ("363L", "NP"),
    ("363A", "PA"),
    ("364S", "CNS"),
)
ROLE_TOKENS = frozenset({"PT", "PTA", "OT", "OTA", "SLP", "MD", "DO", "NP", "PA", "CNS"})
# People who may not furnish therapy minutes (BPM ch.15 §230.1: aide services are not therapy).
UNQUALIFIED_TOKENS = {"AIDE": "AIDE", "TECH": "TECH", "STUDENT": "STUDENT", "SPT": "STUDENT"}
ROLE_NAMES = (
    ("student", "STUDENT"),
    ("aide", "AIDE"),
    ("technician", "TECH"),
    ("physical therapist assistant", "PTA"),
    ("physical therapy assistant", "PTA"),
    ("occupational therapist assistant", "OTA"),
    ("occupational therapy assistant", "OTA"),
    ("physical therapist", "PT"),
    ("occupational therapist", "OT"),
    ("speech language pathologist", "SLP"),
    ("speech-language pathologist", "SLP"),
)
ASSISTANT_OF = {"PTA": "PT", "OTA": "OT"}
# The therapy discipline a role works in (assistants under their therapist's discipline).
DISCIPLINE_OF = {"PT": "PT", "PTA": "PT", "OT": "OT", "OTA": "OT", "SLP": "SLP"}
# Procedure.performer.function codes and words for someone who did not furnish the minutes
# (HL7 v3 ParticipationType: SPRF secondary performer is not among them; these are oversight).
NOT_FURNISHING_CODES = frozenset({"VRF", "AUTHEN", "LA", "SUPERVISOR", "COSIGNER", "ATTEST"})
NOT_FURNISHING_WORDS = ("supervis", "co-sign", "cosign", "countersign", "attest", "oversight")
# Index.memo keys: a resource's role by key and day, and the Performer of an actor named with
# no function by key and day, each made once per index.
_ROLES = "practitioner roles"
_PERFORMERS = "performers without function"


def role_from_concept(concept: object) -> str | None:
    """PT, PTA, OT, OTA, SLP, MD, ... from a CodeableConcept, or None."""
    # Written out (no obj/seq/text calls): it runs for every practitioner of every Bundle.
    if not isinstance(concept, dict):
        return None
    codings = concept.get("coding")
    for coding in codings if isinstance(codings, list) else ():
        if not isinstance(coding, dict):
            continue  # an empty coding names no role
        code = coding.get("code")
        code = code.strip() if isinstance(code, str) else ""
        if coding.get("system") == NUCC_SYSTEM or code.endswith("X"):
            if code in NUCC_EXACT:
                return NUCC_EXACT[code]
            for prefix, role in NUCC_PREFIX:
                if code.startswith(prefix):
                    return role
        display = coding.get("display")
        display = display if isinstance(display, str) else ""
        for token in (code.upper(), display.strip().upper()):
            if token in ROLE_TOKENS:
                return token
            if token in UNQUALIFIED_TOKENS:
                return UNQUALIFIED_TOKENS[token]
        named = _role_named(display) if display else None
        if named:
            return named
    label = concept.get("text")
    if not isinstance(label, str) or not label:
        return None
    label = label.strip()
    if label.upper() in ROLE_TOKENS:
        return label.upper()
    if label.upper() in UNQUALIFIED_TOKENS:
        return UNQUALIFIED_TOKENS[label.upper()]
    return _role_named(label)


def _role_named(label: str) -> str | None:
    lowered = label.lower()
    for name, role in ROLE_NAMES:
        if name in lowered:
            return role
    return None


def _in_force(element: dict, day: date | None) -> bool:
    """Whether a qualification's or PractitionerRole's ``period`` holds on ``day``: not ended
    before it, not begun after it (a day of None: not ended at all, the current one)."""
    period = element.get("period")
    if not isinstance(period, dict):
        return True
    end = parse_day(period.get("end"))
    if day is None:
        return end is None
    if end is not None and end < day:
        return False
    start = parse_day(period.get("start"))
    return start is None or start <= day


# A role as read: the role (or None), and the reading notes of roles left out as not in force.
Role = tuple[str | None, tuple[str, ...]]


def _role_of(index: Index, resource: dict, day: date | None, depth: int = 0) -> Role:
    """The role in force on ``day`` (contract section 2, "who furnished it"): a qualification or
    PractitionerRole whose period ended before it (or begins after it), or a PractitionerRole
    with ``active`` false, is left out, with a note. Without a day, a qualification that ended
    is left out only where one that has not ended names a role."""
    rtype = resource.get("resourceType")
    key = f"{rtype}/{text(resource.get('id'))}"
    if rtype == "Practitioner":
        named = []
        for qualification in seq(resource.get("qualification")):
            role = role_from_concept(obj(qualification).get("code"))
            if role:
                named.append((obj(qualification), role))
        if not named:
            return None, ()
        current = [(q, role) for q, role in named if _in_force(q, day)]
        if day is None and not current:
            current = named  # none is open-ended: without a date, any of them
        notes = tuple(
            f"{key}: its {role} qualification ({_period_text(q)}) is not in force on the date "
            "read; not read as the role"
            for q, role in named
            if (q, role) not in current
        )
        return (current[0][1] if current else None), notes
    if rtype == "PractitionerRole":
        notes: tuple[str, ...] = ()
        if resource.get("active") is False or (day is not None and not _in_force(resource, day)):
            why = "inactive" if resource.get("active") is False else "not in force on the date read"
            notes = (f"{key} is {why} ({_period_text(resource)}); its role is not read",)
        else:
            for concept in seq(resource.get("code")) + seq(resource.get("specialty")):
                role = role_from_concept(concept)
                if role:
                    return role, ()
        if depth == 0:
            practitioner = index.by_key.get(index.key(resource.get("practitioner")) or "")
            if practitioner:
                role, more = _role_of(index, practitioner, day, depth + 1)
                return role, notes + more
        return None, notes
    return None, ()


def _period_text(element: dict) -> str:
    period = obj(element.get("period"))
    start, end = text(period.get("start"))[:10], text(period.get("end"))[:10]
    if not start and not end:
        return "no period"
    return f"{start or '...'} to {end or '...'}"


def _role_of_key(index: Index, key: str, resource: dict, day: date | None = None) -> Role:
    """``_role_of`` a resource of the index, read once per index, key and day (a visit asks the
    same few practitioners' roles for every service, plan and report)."""
    roles = index.memo.get(_ROLES)
    if roles is None:
        roles = index.memo[_ROLES] = {}
    try:
        return roles[key, day]
    except KeyError:
        found = roles[key, day] = _role_of(index, resource, day)
        return found


def role_of_reference(
    index: Index, reference: object, day: date | None = None, quiet: bool = False
) -> str | None:
    """The role (PT, PTA, MD, ...) in force on ``day`` of whoever a reference names: the
    resource it points at, else a role word in its ``display`` ("Rivera, Dana, PT"), else None.
    A role left out as not in force is noted, unless ``quiet`` (a reader that leaves the index
    as it found it)."""
    key = index.key(reference)
    resource = index.by_key.get(key) if key else None
    if resource:
        role, notes = _role_of_key(index, key, resource, day)
        if not quiet:
            for note in notes:
                index.note(note)
        if role:
            return role
    display = text(obj(reference).get("display"))
    for token in reversed(display.replace(",", " ").split()):
        token = token.strip(".").upper()
        if token in ROLE_TOKENS:
            return token
    return _role_named(display) if display else None


def furnishes(function: object) -> bool:
    """False when Procedure.performer.function says supervising or co-signing."""
    if not function:
        return True
    concept = obj(function)
    for coding in seq(concept.get("coding")):
        coding = obj(coding)
        if text(coding.get("code")).strip().upper() in NOT_FURNISHING_CODES:
            return False
        if any(w in text(coding.get("display")).lower() for w in NOT_FURNISHING_WORDS):
            return False
    return not any(w in text(concept.get("text")).lower() for w in NOT_FURNISHING_WORDS)


def performer(index: Index, item: dict, where: str, day: date | None = None) -> Performer | None:
    """The Performer of one Procedure.performer (None for an empty actor reference), with the
    role in force on ``day``."""
    key, resource = index.resolve(item.get("actor"), f"{where}.actor")
    if key is None:
        return None
    return _performer(index, key, resource, furnishes(item.get("function")), day)


def _performer(
    index: Index, key: str, resource: dict | None, furnished: bool, day: date | None
) -> Performer:
    role = None
    if resource:
        role, notes = _role_of_key(index, key, resource, day)
        for note in notes:
            index.note(note)
    person = ""
    if key.startswith("PractitionerRole/") and resource:
        person = index.key(resource.get("practitioner")) or ""
    if role in ASSISTANT_OF:
        return Performer(key, ASSISTANT_OF[role], True, person, furnished)
    return Performer(key, role, False, person, furnished)


def procedure_performer(
    index: Index, item: object, procedure: str, position: int, day: date | None = None
) -> Performer | None:
    """``performer`` of ``{procedure}.performer[{position}]``. The common case, an actor in the
    index named with no function, is made once per index and day (a Performer is immutable),
    and the place is spelt out only when a note may need it."""
    if not isinstance(item, dict):
        item = {}
    if not item.get("function"):
        key = index.key(item.get("actor"))
        if key is None:
            return None
        made = index.memo.get(_PERFORMERS)
        if made is None:
            made = index.memo[_PERFORMERS] = {}
        found = made.get((key, day))
        if found is not None:
            return found
        resource = index.by_key.get(key)
        if resource is not None:
            found = made[key, day] = _performer(index, key, resource, True, day)
            return found
    return performer(index, item, f"{procedure}.performer[{position}]", day)


def procedure_performers(
    index: Index, items: object, procedure: str, day: date | None = None
) -> tuple[Performer, ...]:
    """The Performers of a Procedure's ``performer`` list (``procedure``: its key, for notes),
    each with the role in force on ``day`` (the date of service)."""
    if not isinstance(items, list):
        return ()
    performers = []
    for position, item in enumerate(items):
        found = procedure_performer(index, item, procedure, position, day)
        if found:
            performers.append(found)
    return tuple(performers)


def is_signed_by(index: Index, document: dict) -> bool:
    """A visit note counts as signed when final (or amended) and it names an authenticator:
    by reference, or only by ``display`` or ``identifier`` as Epic sends it."""
    if text(document.get("docStatus")) not in ("final", "amended"):
        return False
    authenticator = obj(document.get("authenticator"))
    return bool(
        index.key(authenticator)
        or text(authenticator.get("display")).strip()
        or obj(authenticator.get("identifier")).get("value")
    )
