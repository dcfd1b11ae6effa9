"""The searches of a visit's second round, built to each server's rules (the parameters and
values its CapabilityStatement declares: plugin/ehr/strategy.py), and the reading notes for what
the review needs and the server does not serve."""

from __future__ import annotations

from datetime import date, timedelta

from plugin.ehr.reader import Params, reading_note
from plugin.ehr.strategy import Strategy, vendor_facts

# The earlier visits read for the episode (treatment days since the plan of care began): a
# plan's certification covers at most 90 days, so two certified intervals reach back 180.
HISTORY_DAYS = 180

# Where a server answers CarePlan only with a `category` (Epic: "a required search parameter",
# its R4 CapabilityStatement): US Core files a plan of treatment under assess-plan
# (docs/episode.md).
EPIC_CAREPLAN_CATEGORY = "assess-plan"
PROVENANCE_TARGET = "Provenance:target"


def measure_categories(strategy: Strategy) -> list[str]:
    """The categories functional and outcome measures are filed under (vendors.toml), those the
    server lists where it lists its categories (Epic: functional-mental-status and survey, not
    exam or activity, which it would refuse)."""
    wanted = list(vendor_facts()["measures"]["categories"])
    listed = strategy.documented("Observation", "category")
    return [c for c in wanted if listed is None or c in listed]


def by_patient(strategy: Strategy, rtype: str, patient: str) -> Params | None:
    """The type's search by patient with the parameter the server declares: `patient`, else
    `subject` (Coverage: `beneficiary` first, the base FHIR parameter, else `patient`, as Oracle
    Health serves it); None when it declares neither. A statement that lists no parameters for
    the type is taken at its word on the type: the base parameter."""
    names = ("beneficiary", "patient") if rtype == "Coverage" else ("patient", "subject")
    for name in names:
        if strategy.declares(rtype, name):
            return {name: _patient_value(strategy, name, patient)}
    if not strategy.params.get(rtype):
        return {names[0]: _patient_value(strategy, names[0], patient)}
    return None


def _patient_value(strategy: Strategy, name: str, patient: str) -> str:
    """`beneficiary` and `subject` take a reference; `patient` the form the server matches."""
    return f"Patient/{patient}" if name != "patient" else patient_param(strategy, patient)


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


def charge_params(strategy: Strategy, encounter_id: str) -> Params:
    params: Params = {"context": f"Encounter/{encounter_id}"}
    if strategy.charge_status:
        params["-status"] = "billable"
    return params


def patient_param(strategy: Strategy, patient: str) -> str:
    """The patient as a reference search value: the bare id at Epic and Oracle Health (as their
    documentation writes it), ``Patient/ID`` elsewhere. FHIR allows both forms, but not every
    server matches the bare one: Medplum's in-memory repository finds nothing by ``patient=ID``
    (tests/independent/test_medplum_server.py)."""
    return patient if strategy.vendor in ("epic", "oracle") else f"Patient/{patient}"


def round2_searches(
    strategy: Strategy, encounter_id: str, patient: str, start: str | None
) -> list[tuple[str, Params]]:
    """The searches keyed by the encounter or the patient. Resources of other encounters are
    history: the extraction tells them apart by their encounter reference. A type the server
    serves but not by patient is left out here: ``unserved`` notes it."""
    window = _history_window(start) if start else {}
    ref = patient_param(strategy, patient)
    searches: list[tuple[str, Params]] = []
    if "Procedure" in strategy.types:
        if "Procedure" in strategy.by_encounter:
            searches.append(("Procedure", {"encounter": f"Encounter/{encounter_id}"}))
        # The patient's procedures of the window: this visit's at Oracle, and at every server
        # the earlier visits' (their notes for the cloned-note rule, their days for the episode).
        searches.append(("Procedure", _dated(strategy, "Procedure", {"patient": ref}, window)))
    for rtype in ("Observation", "Goal", "Condition", "DocumentReference", "Coverage"):
        # DocumentReference: notes, progress reports, plan documents
        params = by_patient(strategy, rtype, patient) if rtype in strategy.types else None
        if params is None:
            continue
        if rtype == "Observation" and strategy.needs_one_of("Observation", "category"):
            categories = measure_categories(strategy)
            if not categories:
                continue  # none of the measure categories is listed: unserved notes it
            params["category"] = ",".join(categories)
        searches.append((rtype, params))
    if "Encounter" in strategy.types:
        searches.append(("Encounter", _dated(strategy, "Encounter", {"patient": ref}, window)))
    if "ChargeItem" in strategy.by_encounter:
        searches.append(("ChargeItem", charge_params(strategy, encounter_id)))
    if "Claim" in strategy.types and strategy.claim_by_patient:
        searches.append(("Claim", {"patient": ref}))
    searches += _episode_searches(strategy, ref)
    return searches


def _dated(strategy: Strategy, rtype: str, params: Params, window: Params) -> Params:
    """The search with the visits' window where the server searches the type by date."""
    if window and strategy.searchable(rtype, "date"):
        return {**params, **window}
    return params


def _episode_searches(strategy: Strategy, patient: str) -> list[tuple[str, Params]]:
    """The plans of care (with their Provenance where the server includes it), and the orders
    and messages of the CY2025 order exception, where the server serves them by patient. A type
    not served is a reading note; a search it refuses becomes one when it answers 400."""
    searches: list[tuple[str, Params]] = []
    if strategy.searchable("CarePlan", "patient"):
        plans: Params = {"patient": patient}
        if strategy.needs_one_of("CarePlan", "category"):  # Epic: "a required search parameter"
            plans["category"] = EPIC_CAREPLAN_CATEGORY
        if PROVENANCE_TARGET in strategy.revinclude.get("CarePlan", ()):
            plans["_revinclude"] = PROVENANCE_TARGET
        searches.append(("CarePlan", plans))
    for rtype in ("ServiceRequest", "Communication"):
        if strategy.searchable(rtype, "patient"):
            searches.append((rtype, {"patient": patient}))
    return searches


def unserved(strategy: Strategy, resources: dict[str, dict]) -> list[dict]:
    """Reading notes for what the review needs and the server does not serve by patient: a
    visit's measures, goals, conditions, notes and payer (a type it serves, but by no parameter
    the fetch can use; Observations where it lists none of the measure categories), the plans of
    care (the review then says episode-unknown with this reason), and, only when the patient
    has orders, the messages of the CY2025 order exception (Oracle serves Communication only as
    an inbox): an unsigned plan's certification is then unknown (plugin/fhir/episode.py)."""
    notes = []
    for rtype in ("Observation", "Goal", "Condition", "DocumentReference", "Coverage"):
        if rtype not in strategy.types:
            continue  # a type the server does not serve at all holds nothing to read
        if by_patient(strategy, rtype, "p") is None:
            why = f"the EHR does not serve {rtype} by patient (its CapabilityStatement)"
        elif rtype == "Observation" and strategy.needs_one_of(rtype, "category"):
            if measure_categories(strategy):
                continue
            why = (
                "the EHR answers Observation by patient only with a category, and lists none "
                "of the categories measures are filed under (its CapabilityStatement)"
            )
        else:
            continue
        notes.append(
            reading_note(
                f"{why}; the review goes on without those resources",
                f"unserved-{rtype}",
                resource=rtype,
            )
        )
    if not strategy.searchable("CarePlan", "patient"):
        notes.append(
            reading_note(
                "the EHR does not serve CarePlan by patient (its CapabilityStatement); "
                "the review goes on without plans of care",
                "unserved-CarePlan",
                resource="CarePlan",
            )
        )
    orders = any(r.get("resourceType") == "ServiceRequest" for r in resources.values())
    if orders and not strategy.searchable("Communication", "patient"):
        notes.append(
            reading_note(
                "the EHR does not serve Communication by patient (its CapabilityStatement): "
                "whether the plan of care was sent to the ordering physician/NPP (the CY2025 "
                "order exception) cannot be read",
                "unserved-Communication",
                resource="Communication",
            )
        )
    return notes


def provenance_search(
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
