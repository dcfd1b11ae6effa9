"""SMART scopes: the v2 set unitguard asks for, and the v1 spelling for servers that want it."""

from __future__ import annotations

import re

DEFAULT_SCOPES = (
    "launch",
    "openid",
    "fhirUser",
    "offline_access",
    "patient/Patient.rs",
    "patient/Encounter.rs",
    "patient/Procedure.rs",
    "patient/Observation.rs",
    "patient/Goal.rs",
    "patient/Condition.rs",
    "patient/DocumentReference.rs",
    "patient/Binary.r",  # the note text a DocumentReference points at (Epic, Oracle Health)
    "patient/Coverage.rs",
    "patient/Claim.rs",
    "patient/ChargeItem.rs",
    "user/Practitioner.rs",
    "user/PractitionerRole.rs",
    "user/Task.cu",
    "user/Communication.c",
)
_V2 = re.compile(r"^(patient|user|system)/([A-Za-z*]+)\.([cruds]+)$")


def to_v1(scope: str) -> str:
    """patient/Observation.rs -> patient/Observation.read; .cu/.c -> .write (SMART v1)."""
    match = _V2.match(scope)
    if not match:
        return scope
    level, rtype, perms = match.groups()
    reads = bool(set(perms) & set("rs"))
    writes = bool(set(perms) & set("cud"))
    if reads and writes:
        return f"{level}/{rtype}.*"
    return f"{level}/{rtype}.{'read' if reads else 'write'}"


def scope_string(scopes: tuple[str, ...], style: str = "v2") -> str:
    chosen = scopes or DEFAULT_SCOPES
    if style == "v1":
        chosen = tuple(dict.fromkeys(to_v1(s) for s in chosen))
    return " ".join(chosen)
