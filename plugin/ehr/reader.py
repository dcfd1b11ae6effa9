"""The FHIR reader a fetch is given, and its requests made to fail softly: a search the server
refuses becomes a reading note, a read it refuses leaves the resource out with a note; each note
says, as data, what could not be read (plugin/fhir/unread.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from plugin.errors import PluginError
from plugin.fhir.unread import unread_issue
from smart_launch.errors import FhirError, FhirRequestError

# The form of a FHIR id (R4 datatype id): what is read by id from the server.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

# A search's parameters; a list value repeats the parameter.
Params = dict[str, str | list[str]]


@dataclass
class SearchResult:
    """One search's resources (every page) and the reading notes it left."""

    resources: list[dict]
    outcomes: list[dict] = field(default_factory=list)
    retries: int = 0  # searches asked again value by value, after the first was refused


class FhirReader(Protocol):
    def read(self, resource_type: str, resource_id: str) -> dict: ...

    def search(self, resource_type: str, params: dict[str, str | list[str]]) -> SearchResult:
        """Every page; a list value repeats the parameter. A refusal raises FhirRequestError."""
        ...

    def capabilities(self) -> dict: ...


# The statuses a server refuses a search's parameters with (FHIR R4 http.html: 400, or 422 for
# a search it understands but cannot process): a search combining values is then retried value
# by value before it counts as refused.
REFUSED = frozenset({400, 422})


def search_or_note(
    client: FhirReader, rtype: str, params: Params, patient: str
) -> Callable[[], object]:
    """The search, or, when the server refuses it (an HTTP error), a result holding only a
    reading note naming what was not read: the review goes on without those resources. A refused
    search that combines values (``category=a,b``) is retried value by value, together: what the
    server gives is kept, each value it still refuses is a note. No answer at all still fails."""

    def call() -> object:
        try:
            return client.search(rtype, params)
        except FhirRequestError as exc:
            if exc.status is None:
                raise
            combined = _combined(params) if exc.status in REFUSED else None
            if combined is None:
                return SearchResult([], [_refused(rtype, exc, patient)])
            return _value_by_value(client, rtype, params, combined, patient, exc)

    return call


def _combined(params: Params) -> str | None:
    """The first parameter whose value combines several (comma-separated), else None."""
    for name, value in params.items():
        if isinstance(value, str) and "," in value and not name.startswith("_"):
            return name
    return None


def _value_by_value(
    client: FhirReader,
    rtype: str,
    params: Params,
    name: str,
    patient: str,
    first: FhirRequestError,
) -> SearchResult:
    values = [v for v in str(params[name]).split(",") if v]

    def one(value: str) -> SearchResult | FhirRequestError:
        try:
            return client.search(rtype, {**params, name: value})
        except FhirRequestError as exc:
            if exc.status is None:
                raise
            return exc

    with ThreadPoolExecutor(max_workers=len(values)) as pool:
        results = list(pool.map(one, values))
    refused = [(v, r) for v, r in zip(values, results, strict=True) if isinstance(r, Exception)]
    if len(refused) == len(values):  # every value refused: the search is refused
        return SearchResult([], [_refused(rtype, first, patient)], retries=len(values))
    found = SearchResult([], retries=len(values))
    for result in results:
        if not isinstance(result, FhirRequestError):
            found.resources += result.resources
            found.outcomes += getattr(result, "outcomes", [])
    if refused:
        part = f"{name} {', '.join(_code(v) for v, _ in refused)}"
        found.outcomes.append(
            reading_note(
                f"the EHR refused the {rtype} search with {part} (asked value by value; "
                f"{_detail(refused[0][1], patient)}); the review goes on without those resources",
                f"refused-{rtype}-{name}",
                resource=rtype,
                part=part,
            )
        )
    return found


def _code(value: str) -> str:
    return value.rpartition("|")[2]


def _detail(exc: FhirRequestError, patient: str) -> str:
    return f"{exc.status}: {str(exc.detail).replace(patient, '[patient]')}"


def _refused(rtype: str, exc: FhirRequestError, patient: str) -> dict:
    return reading_note(
        f"the EHR refused the {rtype} search ({_detail(exc, patient)}); the review goes on "
        "without those resources",
        f"refused-{rtype}",
        resource=rtype,
    )


def patient_or_none(client: FhirReader, patient: str) -> dict | None:
    """The Patient, for the names the coder queue shows; the review does not need it, so any
    refusal or failure only leaves the name out."""
    try:
        return client.read("Patient", patient)
    except (PluginError, FhirError):
        return None


def read_or_none(client: FhirReader, rtype: str, rid: str) -> SearchResult:
    """The resource, or, when the reader refuses it (a PluginError, or the server's HTTP error:
    a 403 or 404 on a Practitioner), a reading note naming it: the review goes on without it.
    No answer at all still fails, as a search does."""
    try:
        return SearchResult([client.read(rtype, rid)])
    except FhirRequestError as exc:
        if exc.status is None:
            raise
        why = f"{exc.status}: {exc.detail}"
    except PluginError as exc:
        why = str(exc)
    return SearchResult(
        [],
        [
            reading_note(
                f"{rtype}/{rid} could not be read ({why})",
                f"{rtype}/{rid}",
                resource=rtype,
                part=f"{rtype}/{rid}",
            )
        ],
    )


def reading_note(message: str, key: str, resource: str = "", part: str = "") -> dict:
    """A warning OperationOutcome: the review reports it as a reading note. With ``resource``
    it also says, as data, what could not be read (plugin/fhir/unread.py)."""
    issue = (
        unread_issue(resource, message, part)
        if resource
        else {"severity": "warning", "code": "incomplete", "diagnostics": message}
    )
    return {
        "resourceType": "OperationOutcome",
        "id": f"unitguard-{key.replace('/', '-')}"[:64],
        "issue": [issue],
    }
