"""What each simulated EHR allows and refuses, from their published server descriptions (ehr.md).

- epic: Procedure/Observation/DocumentReference/Condition searchable by encounter; no ChargeItem;
  Claim only by _id; search Bundles carry an OperationOutcome entry; Task read/search/update but
  no create; no conditional create.
- oracle: Procedure/Observation not searchable by encounter; ChargeItem by context; at most 200
  entries per page; no Task and no Claim.
- full: everything, Task create and conditional create included.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMON = {"_id", "_count", "_sort", "_include", "_revinclude"}
PATIENT = {"patient", "subject"}


@dataclass(frozen=True)
class Profile:
    name: str
    search: dict[str, frozenset[str]]  # type -> search params allowed
    create: frozenset[str]  # types that may be created
    update: frozenset[str]
    # read but not searched: note text, as Epic and Oracle Health serve it (GET Binary/ID)
    read_only: frozenset[str] = frozenset({"Binary"})
    page_cap: int = 1000
    conditional_create: bool = False
    outcome_entries: bool = False
    scope_style: str = "v2"


def _s(*params: str) -> frozenset[str]:
    return frozenset(COMMON | set(params))


CLINICAL = {
    "Patient": _s("name", "identifier"),
    "Encounter": _s(*PATIENT, "date", "status", "class"),
    "Goal": _s(*PATIENT, "lifecycle-status"),
    "Coverage": _s(*PATIENT, "beneficiary"),
    "Practitioner": _s("identifier", "name"),
    "PractitionerRole": _s("practitioner"),
    "Organization": _s("name"),
    "Communication": _s(*PATIENT, "encounter", "based-on"),
}

PROFILES = {
    "epic": Profile(
        "epic",
        {
            **CLINICAL,
            "Procedure": _s(*PATIENT, "encounter", "date", "code", "status"),
            "Observation": _s(*PATIENT, "encounter", "date", "code", "category"),
            "Condition": _s(*PATIENT, "encounter", "category"),
            "DocumentReference": _s(*PATIENT, "encounter", "date", "type"),
            "Claim": frozenset({"_id", "_count"}),
            "Task": _s(*PATIENT, "encounter", "focus", "status", "owner", "code", "identifier"),
        },
        create=frozenset({"Communication", "Observation", "Procedure", "DocumentReference"}),
        update=frozenset({"Task", "Observation", "Procedure", "DocumentReference"}),
        outcome_entries=True,
        scope_style="v1",
    ),
    "oracle": Profile(
        "oracle",
        {
            **CLINICAL,
            "Procedure": _s(*PATIENT, "date"),
            "Observation": _s(*PATIENT, "date", "code", "category"),
            "Condition": _s(*PATIENT),
            "DocumentReference": _s(*PATIENT, "encounter", "date"),
            "ChargeItem": frozenset({"_id", "_count", "context", "account"}),
        },
        create=frozenset({"Communication", "Observation", "DocumentReference"}),
        update=frozenset({"Observation", "DocumentReference", "Encounter"}),
        page_cap=200,
    ),
    "full": Profile(
        "full",
        {
            **CLINICAL,
            "Procedure": _s(*PATIENT, "encounter", "date", "code", "status"),
            "Observation": _s(*PATIENT, "encounter", "date", "code", "category"),
            "Condition": _s(*PATIENT, "encounter"),
            "DocumentReference": _s(*PATIENT, "encounter", "date"),
            "Claim": _s(*PATIENT, "encounter"),
            "ChargeItem": _s(*PATIENT, "context"),
            "Task": _s(*PATIENT, "encounter", "focus", "status", "owner", "code", "identifier"),
        },
        create=frozenset(
            {
                "Task",
                "Communication",
                "Observation",
                "Procedure",
                "DocumentReference",
                "Claim",
                "ChargeItem",
                "Encounter",
                "Patient",
                "Goal",
                "Condition",
                "Coverage",
                "Practitioner",
            }
        ),
        update=frozenset(
            {
                "Task",
                "Observation",
                "Procedure",
                "DocumentReference",
                "Claim",
                "ChargeItem",
                "Encounter",
                "Goal",
                "Condition",
            }
        ),
        conditional_create=True,
    ),
}
