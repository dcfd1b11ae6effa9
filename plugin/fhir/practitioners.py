"""Who furnished a service: discipline and assistant status from Practitioner/PractitionerRole."""

from __future__ import annotations

from plugin.domain import Performer
from plugin.fhir.index import Index, obj, seq, text

NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
# NUCC taxonomy: exact codes first, then the specialty prefixes of the same discipline.
NUCC_EXACT = {
    "225100000X": "PT",
    "225200000X": "PTA",
    "225X00000X": "OT",
    "224Z00000X": "OTA",
    "235Z00000X": "SLP",
}
NUCC_PREFIX = (("2251", "PT"), ("2252", "PTA"), ("225X", "OT"), ("224Z", "OTA"), ("235Z", "SLP"))
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
# Index.memo keys: a resource's role by key, the Performer of an actor named with no
# function, and a Procedure's performers when it names only such an actor, each made once per
# index.
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


def _role_of(index: Index, resource: dict, depth: int = 0) -> str | None:
    rtype = resource.get("resourceType")
    if rtype == "Practitioner":
        for qualification in seq(resource.get("qualification")):
            role = role_from_concept(obj(qualification).get("code"))
            if role:
                return role
    elif rtype == "PractitionerRole":
        for concept in seq(resource.get("code")) + seq(resource.get("specialty")):
            role = role_from_concept(concept)
            if role:
                return role
        if depth == 0:
            practitioner = index.by_key.get(index.key(resource.get("practitioner")) or "")
            if practitioner:
                return _role_of(index, practitioner, depth + 1)
    return None


def _role_of_key(index: Index, key: str, resource: dict) -> str | None:
    """``_role_of`` a resource of the index, read once per index and key (a visit asks the
    same few practitioners' roles for every service, plan and report)."""
    roles = index.memo.get(_ROLES)
    if roles is None:
        roles = index.memo[_ROLES] = {}
    try:
        return roles[key]
    except KeyError:
        role = roles[key] = _role_of(index, resource)
        return role


def role_of_reference(index: Index, reference: object) -> str | None:
    """The role (PT, PTA, MD, ...) of whoever a reference names: the resource it points at,
    else a role word in its ``display`` ("Rivera, Dana, PT"), else None."""
    key = index.key(reference)
    resource = index.by_key.get(key) if key else None
    if resource:
        role = _role_of_key(index, key, resource)
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


def performer(index: Index, item: dict, where: str) -> Performer | None:
    """The Performer of one Procedure.performer (None for an empty actor reference)."""
    key, resource = index.resolve(item.get("actor"), f"{where}.actor")
    if key is None:
        return None
    return _performer(index, key, resource, furnishes(item.get("function")))


def _performer(index: Index, key: str, resource: dict | None, furnished: bool) -> Performer:
    role = _role_of_key(index, key, resource) if resource else None
    person = ""
    if key.startswith("PractitionerRole/") and resource:
        person = index.key(resource.get("practitioner")) or ""
    if role in ASSISTANT_OF:
        return Performer(key, ASSISTANT_OF[role], True, person, furnished)
    return Performer(key, role, False, person, furnished)


def procedure_performer(
    index: Index, item: object, procedure: str, position: int
) -> Performer | None:
    """``performer`` of ``{procedure}.performer[{position}]``. The common case, an actor in the
    index named with no function, is made once per index (a Performer is immutable), and the
    place is spelt out only when a note may need it."""
    if not isinstance(item, dict):
        item = {}
    if not item.get("function"):
        key = index.key(item.get("actor"))
        if key is None:
            return None
        made = index.memo.get(_PERFORMERS)
        if made is None:
            made = index.memo[_PERFORMERS] = {}
        found = made.get(key)
        if found is not None:
            return found
        resource = index.by_key.get(key)
        if resource is not None:
            found = made[key] = _performer(index, key, resource, True)
            return found
    return performer(index, item, f"{procedure}.performer[{position}]")


def procedure_performers(index: Index, items: object, procedure: str) -> tuple[Performer, ...]:
    """The Performers of a Procedure's ``performer`` list (``procedure``: its key, for notes)."""
    if not isinstance(items, list):
        return ()
    performers = []
    for position, item in enumerate(items):
        found = procedure_performer(index, item, procedure, position)
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
