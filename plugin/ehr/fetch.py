"""Gather everything the review reads for one visit into one Bundle, in few round trips.

The two EHRs differ in what they allow (ehr.md; their published CapabilityStatements):
- Epic R4: Procedure, Observation, DocumentReference searchable by ``encounter``; no ChargeItem
  and Claim only by id, so nothing billed is readable (the review runs before charges).
- Oracle Health Millennium R4: Procedure and Observation not searchable by encounter (search
  by patient and date, then filter here); ``ChargeItem?context=Encounter/{id}`` gives the
  billed lines; pages of at most 200.
- A full server: everything, Claim by encounter included.
Both vendors refuse some searches with a 400 (ehr.md; contract section 5), so the parameters are
built to their rules and their CapabilityStatements: date ranges are closed and carry a time
(Oracle), ChargeItem asks for ``-status=billable`` where the server declares it (Oracle),
Coverage goes by `patient` where `beneficiary` is not declared (Oracle), Observation asks for the
categories measures use that the server lists (Epic). A refused search combining values is
retried value by value. What still cannot be read becomes a reading note in the Bundle (an
OperationOutcome entry, search mode ``outcome``) that says, as data, what was not read and from
which EHR (plugin/fhir/unread.py): no rule decides from its absence. Only an unreadable
Encounter fails.
The strategy is chosen from the server's CapabilityStatement. Requests of one round go out
together (threads), so a visit costs a fixed number of sequential round trips, at most 6 (one
more for a round in which a refused search was asked again value by value).
The strategy is in strategy.py, the searches in searches.py, the Binary reads in binaries.py,
the requests that fail softly in reader.py; this module runs the rounds and gathers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

from plugin.ehr.binaries import binary_reads
from plugin.ehr.reader import FHIR_ID, FhirReader, patient_or_none, read_or_none, search_or_note
from plugin.ehr.searches import charge_params, provenance_search, round2_searches, unserved
from plugin.ehr.strategy import Strategy
from plugin.errors import PluginError
from plugin.fhir.unread import with_ehr

# Requests of one round sent at once: round 2 holds up to 14 searches (the episode's included),
# all in one wave rather than two.
MAX_PARALLEL = 16


class FetchError(PluginError):
    """The visit could not be read from the EHR; the message names the request, never data."""


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
    """Run one round of independent requests together. A refused search asked again value by
    value (its values together) adds its requests, and one round trip to the round."""
    if stats is not None and calls:
        stats.rounds += 1
        stats.requests += len(calls)
    if len(calls) <= 1:
        results = [call() for call in calls]
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(calls))) as pool:
            results = list(pool.map(lambda call: call(), calls))
    retries = [getattr(r, "retries", 0) for r in results]
    if stats is not None and any(retries):
        stats.rounds += 1
        stats.requests += sum(retries)
    return results


def _referenced(resources: dict[str, dict]) -> set[tuple[str, str]]:
    """Practitioners and roles not yet fetched that the review reads a role from: performers of
    Procedures, authors and authenticators of notes and reports, the authors and contributors
    of plans of care, signers of their Provenance, requesters of orders, and the person a
    PractitionerRole names."""
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
        elif rtype == "PractitionerRole":  # a role without a code is read from its person
            refs = [resource.get("practitioner")]
        for ref in refs:
            for kind in ("Practitioner", "PractitionerRole"):
                rid = _ref_id(ref, kind)
                if rid and f"{kind}/{rid}" not in resources and FHIR_ID.fullmatch(rid):
                    wanted.add((kind, rid))
    return wanted


def _list(value: object) -> list:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def _keep(resources: dict[str, dict], outcomes: list[dict], found: Iterable[object]) -> None:
    """The resources of one round's results, and their reading notes apart (a search's
    outcomes, a failed read's note)."""
    for item in found:
        outcomes += getattr(item, "outcomes", [])
        for resource in getattr(item, "resources", [item]):
            if not isinstance(resource, dict) or not resource.get("resourceType"):
                continue
            if resource["resourceType"] == "OperationOutcome":
                outcomes.append(resource)
                continue
            key = f"{resource['resourceType']}/{resource.get('id')}"
            resources.setdefault(key, resource)


def fetch_visit(
    client: FhirReader,
    encounter_id: str,
    strategy: Strategy | None = None,
    stats: FetchStats | None = None,
    binary_hosts: tuple[str, ...] = (),
) -> dict:
    """A collection Bundle with the visit, its history and charges, ready for the review.

    Round 1 reads the Encounter (and the CapabilityStatement unless a strategy is given);
    round 2 searches everything keyed by the patient or the encounter, the plans of care with
    their Provenance (`_revinclude`) included; round 3 reads the practitioners they point at,
    the Binary each visit note keeps its text in (Epic, Oracle), at Oracle the year's earlier
    charges, and the plans' Provenance by `target` where it could not be included; round 4,
    only then, reads the Provenance signers. Paging inside a search adds requests, never
    another round of dependent requests. ``binary_hosts``: the hosts besides the server's own
    whose note Binaries are read with the same token (the EHR list's ``binary_hosts``).
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

    searches = round2_searches(strategy, encounter_id, patient, start or None)
    found = _concurrently([search_or_note(client, t, p, patient) for t, p in searches], stats)
    resources: dict[str, dict] = {f"Encounter/{encounter_id}": encounter}
    outcomes: list[dict] = []
    for result in found:
        if not hasattr(result, "resources"):
            raise FetchError("the FHIR client returned something other than a search result")
    _keep(resources, outcomes, found)
    outcomes += unserved(strategy, resources)

    tried = _referenced(resources)  # practitioners asked for (a failed read is not asked twice)
    calls = [(lambda t=t, i=i: read_or_none(client, t, i)) for t, i in sorted(tried)]
    # The Patient (name, MRN) for the coder queue: captured into the Task at sign-off.
    if f"Patient/{patient}" not in resources:
        calls.append(lambda: patient_or_none(client, patient))
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
                    search_or_note(client, "ChargeItem", charge_params(strategy, rid), patient)
                )
    # The plans' Provenance, where the CarePlan search could not include it.
    calls += [
        search_or_note(client, t, p, patient)
        for t, p in provenance_search(strategy, searches, resources)
    ]
    calls += binary_reads(client, resources, encounter_id, outcomes, binary_hosts)
    _keep(resources, outcomes, _concurrently(calls, stats))

    # The signers the Provenance of round 3 names (only when it came in that round), and the
    # people the PractitionerRoles read in round 3 name.
    calls = [
        (lambda t=t, i=i: read_or_none(client, t, i))
        for t, i in sorted(_referenced(resources) - tried)
    ]
    _keep(resources, outcomes, _concurrently(calls, stats))

    entries = [{"resource": r} for r in resources.values()]
    entries += [
        {"resource": with_ehr(o, strategy.ehr), "search": {"mode": "outcome"}} for o in outcomes
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
