"""Gather everything the review reads for one visit into one Bundle, in few round trips.

The two EHRs differ in what they allow (ehr.md; their published CapabilityStatements):
- Epic R4: Procedure, Observation, DocumentReference searchable by ``encounter``; no ChargeItem
  and Claim only by id, so nothing billed is readable (the review runs before charges).
- Oracle Health Millennium R4: Procedure and Observation not searchable by encounter (search
  by patient and date, then filter here); ``ChargeItem?context=Encounter/{id}`` gives the
  billed lines; pages of at most 200.
- A full server: everything, Claim by encounter included.
Both vendors refuse some searches with a 400 (ehr.md; contract section 5), so the parameters are
built to their rules: date ranges are closed and carry a time (Oracle), ChargeItem asks for
``-status=billable`` where the server declares it (Oracle), Observation asks for the categories
therapy measures use (Epic). A search the server still refuses becomes a reading note in the
Bundle (an OperationOutcome entry, search mode ``outcome``); only an unreadable Encounter fails.
The strategy is chosen from the server's CapabilityStatement. Requests of one round go out
together (threads), so a visit costs a fixed number of sequential round trips, at most 6.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from plugin.errors import PluginError
from plugin.fhir.documents import KINDS, media_type, preferred_attachments
from smart_launch.errors import FhirError, FhirRequestError
from smart_launch.http import origin

# Binary reads for visit notes in one fetch: the reviewed visit's first, then the most recent
# earlier visits' (for the cloned-note rule); past this many, older notes are left unread.
MAX_BINARY_READS = 60
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

# Requests of one round sent at once: round 2 holds up to 14 searches (the episode's included),
# all in one wave rather than two.
MAX_PARALLEL = 16

# The earlier visits read for the episode (treatment days since the plan of care began): a
# plan's certification covers at most 90 days, so two certified intervals reach back 180.
HISTORY_DAYS = 180

# Epic answers CarePlan only with a `category` ("a required search parameter", its R4
# CapabilityStatement): US Core files a plan of treatment under assess-plan (docs/episode.md).
EPIC_CAREPLAN_CATEGORY = "assess-plan"
PROVENANCE_TARGET = "Provenance:target"

# Epic answers Observation by patient only with a category or code (ehr.md, Q2/addenda): ask for
# the categories functional and outcome measures are filed under (contract section 5).
EPIC_OBSERVATION_CATEGORIES = "functional-mental-status,survey,exam,activity"


class FetchError(PluginError):
    """The visit could not be read from the EHR; the message names the request, never data."""


@dataclass
class SearchResult:
    resources: list[dict]
    outcomes: list[dict] = field(default_factory=list)


class FhirReader(Protocol):
    def read(self, resource_type: str, resource_id: str) -> dict: ...

    def search(self, resource_type: str, params: dict[str, str | list[str]]) -> SearchResult:
        """Every page; a list value repeats the parameter. A refusal raises FhirRequestError."""
        ...

    def capabilities(self) -> dict: ...


@dataclass(frozen=True)
class Strategy:
    """What one server allows, read from its CapabilityStatement."""

    by_encounter: frozenset[str]  # types searchable by `encounter` (or ChargeItem `context`)
    types: frozenset[str]  # types the server serves at all
    claim_by_patient: bool
    charge_status: bool = False  # ChargeItem declares `-status` (Oracle: required, "billable")
    vendor: str | None = None  # "epic" or "oracle" when the statement names one
    # type -> the search parameters it declares; empty when unknown (then only `types` counts)
    params: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)
    # type -> its declared searchRevInclude values ("Provenance:target")
    revinclude: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)

    def searchable(self, rtype: str, *needed: str) -> bool:
        """The type is searched here with every one of these parameters (when the statement
        lists parameters for it; a statement that lists none is taken at its word on types)."""
        if rtype not in self.types:
            return False
        declared = self.params.get(rtype)
        return declared is None or not declared or set(needed) <= declared

    @classmethod
    def from_capabilities(cls, statement: dict) -> Strategy:
        by_encounter, types, claim_by_patient, charge_status = set(), set(), False, False
        declared: dict[str, frozenset[str]] = {}
        revinclude: dict[str, frozenset[str]] = {}
        for rest in statement.get("rest") or []:
            for resource in rest.get("resource") or []:
                rtype = resource.get("type", "")
                interactions = {
                    (i or {}).get("code") for i in resource.get("interaction") or [] if i
                }
                if interactions and "search-type" not in interactions:
                    continue  # read only (Epic's Provenance, every Binary): never searched
                types.add(rtype)
                params = {p.get("name") for p in resource.get("searchParam") or []}
                declared[rtype] = frozenset(p for p in params if isinstance(p, str))
                revinclude[rtype] = frozenset(
                    v for v in resource.get("searchRevInclude") or [] if isinstance(v, str)
                )
                if "encounter" in params or (rtype == "ChargeItem" and "context" in params):
                    by_encounter.add(rtype)
                if rtype == "Claim" and {"patient", "encounter"} & params:
                    claim_by_patient = True
                if rtype == "ChargeItem" and "-status" in params:
                    charge_status = True
        return cls(
            frozenset(by_encounter),
            frozenset(types),
            claim_by_patient,
            charge_status,
            _vendor(statement),
            declared,
            revinclude,
        )


def _vendor(statement: dict) -> str | None:
    """Epic names itself in `software`, Oracle Health in `publisher`; both in the URL."""
    software = str((statement.get("software") or {}).get("name") or "")
    publisher = str(statement.get("publisher") or "")
    url = str((statement.get("implementation") or {}).get("url") or "")
    if software.startswith("Epic") or "epic.com" in url:
        return "epic"
    if publisher.startswith(("Oracle", "Cerner")) or "cerner.com" in url:
        return "oracle"
    return None


def _ref_id(reference: object, rtype: str) -> str | None:
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(ref, str) and ref.startswith(f"{rtype}/"):
        return ref.split("/")[1]
    return None


@dataclass
class FetchStats:
    """How many dependent rounds and requests one fetch took."""

    rounds: int = 0
    requests: int = 0


def _concurrently(calls: list[Callable[[], object]], stats: FetchStats | None) -> list:
    """Run one round of independent requests together."""
    if stats is not None and calls:
        stats.rounds += 1
        stats.requests += len(calls)
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(calls))) as pool:
        return list(pool.map(lambda call: call(), calls))


Params = dict[str, str | list[str]]


def _history_window(start: str) -> Params:
    """The visits' window as a closed `date` range with times (Oracle refuses a prefixed date
    without a time, and an open range on Procedure and Observation): from the earlier of the
    visit's 1 January and HISTORY_DAYS before the visit (an episode that crosses 1 January is
    seen whole), to the day after. A day to spare at each end keeps a visit in any time zone
    inside; the review tells the years apart."""
    day = date.fromisoformat(start)
    first = min(date(day.year, 1, 1), day - timedelta(days=HISTORY_DAYS)) - timedelta(days=1)
    last = day + timedelta(days=2)
    return {"date": [f"ge{first.isoformat()}T00:00:00Z", f"lt{last.isoformat()}T00:00:00Z"]}


def _charge_params(strategy: Strategy, encounter_id: str) -> Params:
    params: Params = {"context": f"Encounter/{encounter_id}"}
    if strategy.charge_status:
        params["-status"] = "billable"
    return params


def _round2_searches(
    strategy: Strategy, encounter_id: str, patient: str, start: str | None
) -> list[tuple[str, Params]]:
    """The searches keyed by the encounter or the patient. Resources of other encounters are
    history: the extraction tells them apart by their encounter reference."""
    window = _history_window(start) if start else {}
    observations: Params = {"patient": patient}
    if strategy.vendor == "epic":
        observations["category"] = EPIC_OBSERVATION_CATEGORIES
    searches: list[tuple[str, Params]] = []
    if "Procedure" in strategy.types:
        if "Procedure" in strategy.by_encounter:
            searches.append(("Procedure", {"encounter": f"Encounter/{encounter_id}"}))
        # The patient's procedures of the window: this visit's at Oracle, and at every server
        # the earlier visits' (their notes for the cloned-note rule, their days for the episode).
        searches.append(("Procedure", {"patient": patient, **window}))
    for rtype, params in (
        ("Observation", observations),
        ("Goal", {"patient": patient}),
        ("Condition", {"patient": patient}),
        ("DocumentReference", {"patient": patient}),  # notes, progress reports, plan documents
        ("Coverage", {"beneficiary": f"Patient/{patient}"}),
        ("Encounter", {"patient": patient, **window}),
    ):
        if rtype in strategy.types:
            searches.append((rtype, params))
    if "ChargeItem" in strategy.by_encounter:
        searches.append(("ChargeItem", _charge_params(strategy, encounter_id)))
    if "Claim" in strategy.types and strategy.claim_by_patient:
        searches.append(("Claim", {"patient": patient}))
    searches += _episode_searches(strategy, patient)
    return searches


def _episode_searches(strategy: Strategy, patient: str) -> list[tuple[str, Params]]:
    """The plans of care (with their Provenance where the server includes it), and the orders
    and messages of the CY2025 order exception, where the server serves them by patient. A type
    not served is a reading note; a search it refuses becomes one when it answers 400."""
    searches: list[tuple[str, Params]] = []
    if "CarePlan" in strategy.types:
        plans: Params = {"patient": patient}
        if strategy.vendor == "epic":
            plans["category"] = EPIC_CAREPLAN_CATEGORY
        if PROVENANCE_TARGET in strategy.revinclude.get("CarePlan", ()):
            plans["_revinclude"] = PROVENANCE_TARGET
        searches.append(("CarePlan", plans))
    for rtype in ("ServiceRequest", "Communication"):
        if strategy.searchable(rtype, "patient"):
            searches.append((rtype, {"patient": patient}))
    return searches


def _unserved(strategy: Strategy, resources: dict[str, dict]) -> list[dict]:
    """Reading notes for what the episode needs and the server does not serve by patient: plans
    of care (the review then says episode-unknown with this reason), and, only when the patient
    has orders, the messages of the CY2025 order exception (Oracle serves Communication only as
    an inbox): an unsigned plan's certification is then unknown (plugin/fhir/episode.py)."""
    notes = []
    if not strategy.searchable("CarePlan", "patient"):
        notes.append(
            _note(
                "the EHR does not serve CarePlan by patient (its CapabilityStatement); "
                "the review goes on without plans of care",
                "unserved-CarePlan",
            )
        )
    orders = any(r.get("resourceType") == "ServiceRequest" for r in resources.values())
    if orders and not strategy.searchable("Communication", "patient"):
        notes.append(
            _note(
                "the EHR does not serve Communication by patient (its CapabilityStatement): "
                "whether the plan of care was sent to the ordering physician/NPP (the CY2025 "
                "order exception) cannot be read",
                "unserved-Communication",
            )
        )
    return notes


def _provenance_search(
    strategy: Strategy, searches: list[tuple[str, Params]], resources: dict[str, dict]
) -> list[tuple[str, Params]]:
    """Provenance of the plans read, by `target`, where the server did not include it with the
    CarePlan search and serves it that way (a round after the plans)."""
    included = any(
        rtype == "CarePlan" and params.get("_revinclude") == PROVENANCE_TARGET
        for rtype, params in searches
    )
    plans = sorted(k for k, r in resources.items() if r.get("resourceType") == "CarePlan")
    if included or not plans or not strategy.searchable("Provenance", "target"):
        return []
    return [("Provenance", {"target": ",".join(plans)})]


def _search_or_note(
    client: FhirReader, rtype: str, params: Params, patient: str
) -> Callable[[], object]:
    """The search, or, when the server refuses it (an HTTP error), a result holding only a
    reading note: the review goes on without those resources. No answer at all still fails."""

    def call() -> object:
        try:
            return client.search(rtype, params)
        except FhirRequestError as exc:
            if exc.status is None:
                raise
            detail = str(exc.detail).replace(patient, "[patient]")
            note = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "warning",
                        "code": "incomplete",
                        "diagnostics": f"the EHR refused the {rtype} search ({exc.status}: "
                        f"{detail}); the review goes on without those resources",
                    }
                ],
            }
            return SearchResult([], [note])

    return call


def _referenced(resources: dict[str, dict]) -> set[tuple[str, str]]:
    """Practitioners and roles not yet fetched that the review reads a role from: performers of
    Procedures, authors and authenticators of notes and reports, the authors and contributors
    of plans of care, signers of their Provenance, requesters of orders."""
    wanted: set[tuple[str, str]] = set()
    for resource in resources.values():
        rtype = resource.get("resourceType")
        refs: list[object] = []
        if rtype == "Procedure":
            refs = [(p or {}).get("actor") for p in _list(resource.get("performer"))]
        elif rtype == "DocumentReference":
            refs = [*_list(resource.get("authenticator")), *_list(resource.get("author"))]
        elif rtype == "CarePlan":
            refs = [resource.get("author"), *_list(resource.get("contributor"))]
        elif rtype == "Provenance":
            refs = [(s or {}).get("who") for s in _list(resource.get("signature"))]
        elif rtype == "ServiceRequest":
            refs = [resource.get("requester")]
        for ref in refs:
            for kind in ("Practitioner", "PractitionerRole"):
                rid = _ref_id(ref, kind)
                if rid and f"{kind}/{rid}" not in resources and _FHIR_ID.fullmatch(rid):
                    wanted.add((kind, rid))
    return wanted


def _list(value: object) -> list:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def _keep(resources: dict[str, dict], found: Iterable[object]) -> None:
    for item in found:
        for resource in getattr(item, "resources", [item]):
            if isinstance(resource, dict) and resource.get("resourceType"):
                key = f"{resource['resourceType']}/{resource.get('id')}"
                resources.setdefault(key, resource)


def fetch_visit(
    client: FhirReader,
    encounter_id: str,
    strategy: Strategy | None = None,
    stats: FetchStats | None = None,
) -> dict:
    """A collection Bundle with the visit, its history and charges, ready for the review.

    Round 1 reads the Encounter (and the CapabilityStatement unless a strategy is given);
    round 2 searches everything keyed by the patient or the encounter, the plans of care with
    their Provenance (`_revinclude`) included; round 3 reads the practitioners they point at,
    the Binary each visit note keeps its text in (Epic, Oracle), at Oracle the year's earlier
    charges, and the plans' Provenance by `target` where it could not be included; round 4,
    only then, reads the Provenance signers. Paging inside a search adds requests, never
    another round of dependent requests.
    """
    calls: list[Callable[[], object]] = [lambda: client.read("Encounter", encounter_id)]
    if strategy is None:
        calls.append(client.capabilities)
    results = _concurrently(calls, stats)
    encounter = results[0]
    if strategy is None:
        strategy = Strategy.from_capabilities(results[1])
    if not isinstance(encounter, dict) or encounter.get("resourceType") != "Encounter":
        raise FetchError(f"Encounter/{encounter_id} could not be read")
    patient = _ref_id(encounter.get("subject"), "Patient")
    if patient is None:
        raise FetchError(f"Encounter/{encounter_id} names no patient")
    start = ((encounter.get("period") or {}).get("start") or "")[:10]
    try:
        date.fromisoformat(start)
    except ValueError:
        start = ""
    year_start = f"{start[:4]}-01-01" if start else None

    searches = _round2_searches(strategy, encounter_id, patient, start or None)
    found = _concurrently([_search_or_note(client, t, p, patient) for t, p in searches], stats)
    resources: dict[str, dict] = {f"Encounter/{encounter_id}": encounter}
    outcomes: list[dict] = []
    for result in found:
        if not hasattr(result, "resources"):
            raise FetchError("the FHIR client returned something other than a search result")
        outcomes += result.outcomes
    _keep(resources, found)
    outcomes += _unserved(strategy, resources)

    tried = _referenced(resources)  # practitioners asked for (a failed read is not asked twice)
    calls = [(lambda t=t, i=i: _read_or_none(client, t, i)) for t, i in sorted(tried)]
    # The Patient (name, MRN) for the coder queue: captured into the Task at sign-off.
    if f"Patient/{patient}" not in resources:
        calls.append(lambda: _patient_or_none(client, patient))
    # Oracle serves charges only by encounter: the same year's earlier visits' ChargeItems give
    # the KX running total (Epic exposes none; a full server answered Claim?patient above).
    if "ChargeItem" in strategy.by_encounter and year_start:
        for resource in list(resources.values()):
            rid = resource.get("id")
            when = ((resource.get("period") or {}).get("start") or "")[:10]
            if (
                resource.get("resourceType") == "Encounter"
                and rid != encounter_id
                and year_start <= when <= start
            ):
                calls.append(
                    _search_or_note(client, "ChargeItem", _charge_params(strategy, rid), patient)
                )
    # The plans' Provenance, where the CarePlan search could not include it.
    calls += [
        _search_or_note(client, t, p, patient)
        for t, p in _provenance_search(strategy, searches, resources)
    ]
    calls += _binary_reads(client, resources, encounter_id, outcomes)
    third = _concurrently(calls, stats)
    outcomes += [o for result in third for o in getattr(result, "outcomes", [])]
    _keep(resources, third)

    # The signers the Provenance of round 3 names (only when it came in that round).
    calls = [
        (lambda t=t, i=i: _read_or_none(client, t, i))
        for t, i in sorted(_referenced(resources) - tried)
    ]
    fourth = _concurrently(calls, stats)
    _keep(resources, [r for r in fourth if r is not None])

    entries = [{"resource": r} for r in resources.values()]
    entries += [{"resource": o, "search": {"mode": "outcome"}} for o in outcomes]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _patient_or_none(client: FhirReader, patient: str) -> dict | None:
    """The Patient, for the names the coder queue shows; the review does not need it, so any
    refusal or failure only leaves the name out."""
    try:
        return client.read("Patient", patient)
    except (PluginError, FhirError):
        return None


def _read_or_none(client: FhirReader, rtype: str, rid: str) -> dict | None:
    try:
        return client.read(rtype, rid)
    except PluginError:
        return None


def _note(message: str, key: str) -> dict:
    """A warning OperationOutcome: the review reports it as a reading note."""
    return {
        "resourceType": "OperationOutcome",
        "id": f"unitguard-{key.replace('/', '-')}"[:64],
        "issue": [{"severity": "warning", "code": "incomplete", "diagnostics": message}],
    }


def _binary_id(url: str, base: str | None) -> tuple[str | None, str | None]:
    """(Binary id, None) for a url this server serves, else (None, why it is not read)."""
    if "://" in url:
        if base is None or origin(url) != origin(base):
            return None, "its attachment url is on another server; only the EHR's own is read"
        path = url.split("?")[0].split("#")[0]
    elif url.startswith("urn:"):
        return None, None  # a Bundle-local reference: nothing to read from the server
    else:
        path = url
    parts = path.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Binary" and _FHIR_ID.fullmatch(parts[-1]):
        return parts[-1], None
    return None, None  # not a Binary: the extraction notes what it cannot read


def _binary_reads(
    client: FhirReader, resources: dict[str, dict], encounter_id: str, outcomes: list[dict]
) -> list[Callable[[], object]]:
    """The reads of the Binaries the visits' notes keep their text in (``attachment.url``), for
    the round of practitioner reads. Only the server's own Binaries are read (a url on another
    origin would carry the token elsewhere; it becomes a note), one per note (its most readable
    format), and a failed read is a note, never a failure of the fetch."""
    base = getattr(client, "base_url", None)
    base = base if isinstance(base, str) and base else None
    starts = {
        key: str(_obj(r.get("period")).get("start") or "")
        for key, r in resources.items()
        if r.get("resourceType") == "Encounter"
    }
    notes = []
    for key, resource in resources.items():
        if resource.get("resourceType") != "DocumentReference":
            continue
        if resource.get("status") == "entered-in-error":
            continue
        refs = _obj(resource.get("context")).get("encounter")
        visits = [_obj(r).get("reference") for r in (refs if isinstance(refs, list) else [])]
        visits = [v for v in visits if isinstance(v, str) and v in starts]
        if visits:
            mine = f"Encounter/{encounter_id}" in visits
            notes.append((mine, max(starts[v] for v in visits), key, resource))
    notes.sort(key=lambda n: (n[0], n[1]), reverse=True)  # this visit's, then the most recent

    wanted: dict[str, str] = {}  # Binary id -> the DocumentReference whose text it holds
    for _, _, key, document in notes:
        attachments = preferred_attachments(document)
        if any(isinstance(a.get("data"), str) and a["data"] and _readable(a) for a in attachments):
            continue  # the text is embedded
        for attachment in attachments:
            url = attachment.get("url")
            if not isinstance(url, str) or not url.strip() or not _readable(attachment):
                continue
            rid, why = _binary_id(url.strip(), base)
            if why:
                outcomes.append(_note(f"{key}: {why}", key))
            if rid and f"Binary/{rid}" not in resources:
                wanted.setdefault(rid, key)
            break
    if len(wanted) > MAX_BINARY_READS:
        skipped = len(wanted) - MAX_BINARY_READS
        outcomes.append(
            _note(
                f"{skipped} older visit notes kept as Binary were not read "
                f"(at most {MAX_BINARY_READS} per review)",
                "binary-limit",
            )
        )
        wanted = dict(list(wanted.items())[:MAX_BINARY_READS])
    return [(lambda r=rid, k=key: _read_binary(client, r, k)) for rid, key in wanted.items()]


def _obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _readable(attachment: dict) -> bool:
    mime, _ = media_type(attachment.get("contentType"))
    return not mime or mime in KINDS


def _read_binary(client: FhirReader, rid: str, document: str) -> dict:
    try:
        found = client.read("Binary", rid)
    except (PluginError, FhirError) as exc:
        return _note(f"{document}: Binary/{rid} could not be read ({exc})", f"Binary/{rid}")
    if not isinstance(found, dict) or found.get("resourceType") != "Binary":
        return _note(f"{document}: Binary/{rid} is not a FHIR Binary", f"Binary/{rid}")
    return found
