"""Who may see what (contract section 5): a launch with patient context is a clinician's; a user
the EHR entry names in ``coders``, or who holds a PractitionerRole whose code is in
``coder_role_codes``, is a coder and works that EHR's queue only."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

CLINICIAN = "therapist"
CODER = "coder"


def relative_reference(ref: str | None, issuer: str) -> str | None:
    """``Practitioner/x`` from a fhirUser that may be absolute (``{issuer}/Practitioner/x``)."""
    if not ref:
        return None
    ref = ref.strip()
    if ref.startswith(issuer.rstrip("/") + "/"):
        ref = ref[len(issuer.rstrip("/")) + 1 :]
    parts = ref.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-1] or not parts[-2]:
        return None
    if "://" in ref:  # an absolute reference to another server is not this EHR's user
        return None
    return f"{parts[-2]}/{parts[-1]}"


def role_codes(practitioner_roles: Iterable[dict]) -> set[str]:
    """Every code of every PractitionerRole (``code[].coding[].code``)."""
    codes = set()
    for role in practitioner_roles:
        if role.get("active") is False:
            continue
        for concept in role.get("code") or []:
            for coding in (concept or {}).get("coding") or []:
                if coding.get("code"):
                    codes.add(str(coding["code"]))
    return codes


def is_coder(
    user: str | None,
    coders: Iterable[str],
    coder_role_codes: Iterable[str],
    roles_of: Callable[[str], list[dict]],
) -> bool:
    """Whether ``user`` (a relative reference) is a coder of this EHR. ``roles_of`` reads the
    user's PractitionerRoles from the EHR; it is called only when the list does not decide."""
    if not user:
        return False
    if user in set(coders):
        return True
    wanted = set(coder_role_codes)
    if not wanted:
        return False
    if not user.startswith(("Practitioner/", "PractitionerRole/")):
        return False
    return bool(role_codes(roles_of(user)) & wanted)
