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
ROLE_TOKENS = frozenset({"PT", "PTA", "OT", "OTA", "SLP", "MD", "DO", "NP", "PA"})
ROLE_NAMES = (
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


def role_from_concept(concept: object) -> str | None:
    """PT, PTA, OT, OTA, SLP, MD, ... from a CodeableConcept, or None."""
    concept = obj(concept)
    for coding in seq(concept.get("coding")):
        coding = obj(coding)
        code = text(coding.get("code")).strip()
        if text(coding.get("system")) == NUCC_SYSTEM or code.endswith("X"):
            if code in NUCC_EXACT:
                return NUCC_EXACT[code]
            for prefix, role in NUCC_PREFIX:
                if code.startswith(prefix):
                    return role
        if code.upper() in ROLE_TOKENS:
            return code.upper()
        display = text(coding.get("display")).strip()
        if display.upper() in ROLE_TOKENS:
            return display.upper()
    label = text(concept.get("text")).strip()
    if label.upper() in ROLE_TOKENS:
        return label.upper()
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


def performer(index: Index, reference: object, where: str) -> Performer | None:
    """The Performer a Procedure.performer.actor points at (None for an empty reference)."""
    key, resource = index.resolve(reference, where)
    if key is None:
        return None
    role = _role_of(index, resource) if resource else None
    person = ""
    if key.startswith("PractitionerRole/") and resource:
        person = index.key(resource.get("practitioner")) or ""
    if role in ASSISTANT_OF:
        return Performer(key, ASSISTANT_OF[role], assistant=True, person=person)
    return Performer(key, role, assistant=False, person=person)


def is_signed_by(index: Index, document: dict) -> bool:
    """A visit note counts as signed when final and it names an authenticator."""
    return text(document.get("docStatus")) == "final" and bool(
        index.key(document.get("authenticator"))
    )
