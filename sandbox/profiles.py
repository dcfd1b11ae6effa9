"""What each simulated EHR allows and refuses, built from the vendors' published R4
CapabilityStatements (sandbox/declared.py reads the trimmed copies in sandbox/vendors/):
- epic: api-evangelist/epic-systems fhir/epic-fhir-r4-capabilitystatement.json @2be3724 (Epic
  May 2026 sandbox, fhir.epic.com, captured 2026-07-24), trimmed into vendors/epic-r4.json;
- oracle: api-evangelist/cerner conformance/cerner-capability-statement-r4-secure.json @5ebcabe
  (Oracle Health Millennium secure sandbox, captured 2026-08-14), into vendors/oracle-r4.json.

A vendor profile searches only the types its vendor declares with search-type, by the parameters
it declares (those the sandbox can evaluate), and refuses with a 400 every other parameter, a
value outside the values a parameter's documentation lists (Epic's Observation categories), an
``_include``/``_revinclude`` the vendor does not declare, and ``_sort`` (declared by neither).
On top of that, what the vendors' documentation says they refuse (ehr.md; contract section 5):

- epic: no ChargeItem; Claim only by _id; search Bundles carry an OperationOutcome entry; Task
  read/search/update but no create; no conditional create. Refuses Observation by patient without
  `category` or `code`, and CarePlan without `category` ("a required search parameter").
  Provenance is read only, reached by CarePlan `_revinclude=Provenance:target`.
- oracle: Procedure/Observation not searchable by encounter; Coverage only by `_id`, `patient`
  or `-encounter` (no `beneficiary`); ChargeItem by context (with `-status=billable`, as Oracle
  requires); at most 200 entries per page; no Task, Claim, PractitionerRole or EpisodeOfCare.
  Refuses a prefixed date without a time, and on Procedure/Observation/CarePlan a date range left
  open. Provenance only by `target`; Communication only as the inbox (category, received,
  recipient and -email-status together), so never by patient (docs/episode.md).
- full: everything, Task create and conditional create included; refuses nothing it understands.
  It declares no `searchRevInclude`, so Provenance is searched by `target`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.declared import Declared, against_statement, declared
from sandbox.search import PREFIXES

COMMON = {"_id", "_count", "_sort", "_include", "_revinclude"}
PATIENT = {"patient", "subject"}
CONTROL = {"_sort", "_include", "_revinclude"}  # result parameters, not searchParams

# The FHIR search parameter type of every parameter the sandbox understands (CapabilityStatement
# rest.resource.searchParam.type; R4 requires it).
PARAM_TYPES = {
    "_id": "token",
    "_count": "number",
    "patient": "reference",
    "subject": "reference",
    "encounter": "reference",
    "context": "reference",
    "account": "reference",
    "beneficiary": "reference",
    "practitioner": "reference",
    "based-on": "reference",
    "focus": "reference",
    "owner": "reference",
    "date": "date",
    "status": "token",
    "-status": "token",
    "lifecycle-status": "token",
    "code": "token",
    "category": "token",
    "class": "token",
    "type": "token",
    "identifier": "token",
    "name": "string",
    "target": "reference",
    "requester": "reference",
    "recipient": "reference",
    "received": "date",
    "authored": "date",
    "intent": "token",
    "-email-status": "token",
}
DATE_PARAMS = {p for p, t in PARAM_TYPES.items() if t == "date"}

Params = list[tuple[str, str]]  # a query string's pairs, repeated names kept


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
    refusals: tuple[Callable[[str, Params], str | None], ...] = ()
    # type -> the _revinclude values its CapabilityStatement declares (searchRevInclude)
    revinclude: dict[str, tuple[str, ...]] = field(default_factory=dict)
    vendor: dict | None = None  # how the CapabilityStatement names the server
    # the vendor's published statement the profile is built from (None: the full profile)
    declared: Declared | None = None

    def refusal(self, rtype: str, params: Params) -> str | None:
        """Why this vendor refuses the search (400), or None."""
        if self.declared is not None:
            why = against_statement(self.declared, rtype, params)
            if why:
                return why
        for rule in self.refusals:
            why = rule(rtype, params)
            if why:
                return why
        return None


def _s(*params: str) -> frozenset[str]:
    return frozenset(COMMON | set(params))


def _names(params: Params) -> set[str]:
    return {name for name, _ in params}


def oracle_date_needs_time(rtype: str, params: Params) -> str | None:
    """Oracle: a date "may be provided twice with 'le', 'lt', 'ge', or 'gt' prefixes and time
    component"; a prefixed date without a time is refused."""
    for name, value in params:
        if name in DATE_PARAMS and value[:2] in PREFIXES and "T" not in value:
            return f"{name} with a prefix must include a time component (e.g. {value}T00:00:00Z)"
    return None


def oracle_date_closed_range(rtype: str, params: Params) -> str | None:
    """Oracle Procedure, Observation and CarePlan: "The date and prefix pairs must create a closed
    range" (CarePlan: "the 'date' parameter must be provided twice")."""
    if rtype not in ("Procedure", "Observation", "CarePlan"):
        return None
    prefixes = {v[:2] for n, v in params if n == "date" and v[:2] in PREFIXES}
    if prefixes and not ({"ge", "gt"} & prefixes and {"le", "lt"} & prefixes):
        return "date prefixes must create a closed range (one of ge/gt and one of le/lt)"
    return None


def oracle_charge_item(rtype: str, params: Params) -> str | None:
    """Oracle ChargeItem: `_id`, or `context`/`account` with `-status` set to billable."""
    if rtype != "ChargeItem":
        return None
    names = _names(params)
    if "_id" in names:
        return None
    if not {"context", "account"} & names:
        return "ChargeItem search requires _id, context or account"
    status = [v for n, v in params if n == "-status"]
    if status != ["billable"]:
        return "-status must be provided with context or account and be set to 'billable'"
    return None


def epic_observation_needs_category(rtype: str, params: Params) -> str | None:
    """Epic Observation.Search: by patient it needs `category` or `code`."""
    names = _names(params)
    if rtype == "Observation" and PATIENT & names and not {"category", "code", "_id"} & names:
        return "Observation search by patient requires a category or code parameter"
    return None


def oracle_communication(rtype: str, params: Params) -> str | None:
    """Oracle Communication: `_id`, or `category`, `received`, `recipient` and `-email-status`
    together (secure R4 CapabilityStatement, August 2026): the inbox, never by patient."""
    names = _names(params)
    if rtype != "Communication" or "_id" in names:
        return None
    missing = sorted({"category", "received", "recipient", "-email-status"} - names)
    if missing:
        return (
            f"Communication search requires _id, or category, received, recipient and "
            f"-email-status together (missing {', '.join(missing)})"
        )
    return None


def oracle_provenance_needs_target(rtype: str, params: Params) -> str | None:
    """Oracle Provenance: `target` "is a required field if the _id field is not given"."""
    if rtype == "Provenance" and not {"target", "_id"} & _names(params):
        return "Provenance search requires _id or target"
    return None


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


def vendor_search(statement: Declared) -> dict[str, frozenset[str]]:
    """type -> the search parameters the vendor declares for it that the sandbox evaluates, for
    every type the vendor searches (search-type); ``_include``/``_revinclude`` where it declares
    them. Everything else is refused: an unknown parameter with the 400 of sandbox/reads.py.
    Binary stays read only (Epic also declares a search by `_id`): a Binary has no patient of
    its own, so the sandbox serves it only by id, through its note's patient."""
    search = {}
    for rtype in statement.resources:
        if not statement.searched(rtype) or rtype == "Binary":
            continue
        names = set(statement.params(rtype)) & set(PARAM_TYPES)
        names |= {"_include"} if statement.includes(rtype) else set()
        names |= {"_revinclude"} if statement.revincludes(rtype) else set()
        search[rtype] = frozenset(names)
    return search


def _read_only(statement: Declared) -> frozenset[str]:
    """Types the vendor reads but never searches (Binary at Oracle, Provenance at Epic)."""
    return frozenset(
        t
        for t in statement.resources
        if "read" in statement.interactions(t) and not statement.searched(t)
    ) | {"Binary"}


EPIC, ORACLE = declared("epic"), declared("oracle")

PROFILES = {
    "epic": Profile(
        "epic",
        vendor_search(EPIC),
        # what the sandbox lets an app write, within what Epic declares (create/update)
        create=frozenset({"Communication", "Observation", "Procedure", "DocumentReference"}),
        update=frozenset({"Task", "Observation", "Procedure", "DocumentReference"}),
        read_only=_read_only(EPIC),
        outcome_entries=True,
        scope_style="v1",
        refusals=(epic_observation_needs_category,),
        revinclude={t: EPIC.revincludes(t) for t in EPIC.resources},
        vendor={
            "software": {"name": "Epic", "version": "May 2026", "releaseDate": "2026-05-11"},
            "implementation": {"description": "unitguard sandbox imitating Epic's FHIR server"},
        },
        declared=EPIC,
    ),
    "oracle": Profile(
        "oracle",
        vendor_search(ORACLE),
        # within what Oracle declares (create; update, or patch for Encounter)
        create=frozenset({"Communication", "Observation", "DocumentReference"}),
        update=frozenset({"Observation", "DocumentReference", "Encounter"}),
        read_only=_read_only(ORACLE),
        page_cap=200,
        refusals=(
            oracle_date_needs_time,
            oracle_date_closed_range,
            oracle_charge_item,
            oracle_communication,
            oracle_provenance_needs_target,
        ),
        revinclude={t: ORACLE.revincludes(t) for t in ORACLE.resources},
        vendor={
            "publisher": "Oracle Health",
            "implementation": {
                "description": "unitguard sandbox imitating Oracle Health's FHIR server on "
                "top of Millennium"
            },
        },
        declared=ORACLE,
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
            "ChargeItem": _s(*PATIENT, "context", "status"),
            "Task": _s(*PATIENT, "encounter", "focus", "status", "owner", "code", "identifier"),
            # no searchRevInclude declared: the fetch asks for Provenance by target instead
            "CarePlan": _s(*PATIENT, "category", "date", "status", "intent"),
            "Provenance": _s("patient", "target"),
            "ServiceRequest": _s(*PATIENT, "requester", "authored", "status", "code"),
            "EpisodeOfCare": _s(*PATIENT, "status"),
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
                "Binary",
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
