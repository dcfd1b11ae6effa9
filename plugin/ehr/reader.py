"""The FHIR reader a fetch is given, and its requests made to fail softly: a search the server
refuses becomes a reading note, a read that fails leaves the resource out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from plugin.errors import PluginError
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


class FhirReader(Protocol):
    def read(self, resource_type: str, resource_id: str) -> dict: ...

    def search(self, resource_type: str, params: dict[str, str | list[str]]) -> SearchResult:
        """Every page; a list value repeats the parameter. A refusal raises FhirRequestError."""
        ...

    def capabilities(self) -> dict: ...


def search_or_note(
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


def patient_or_none(client: FhirReader, patient: str) -> dict | None:
    """The Patient, for the names the coder queue shows; the review does not need it, so any
    refusal or failure only leaves the name out."""
    try:
        return client.read("Patient", patient)
    except (PluginError, FhirError):
        return None


def read_or_none(client: FhirReader, rtype: str, rid: str) -> dict | None:
    """The resource, or None when the reader raises a PluginError (other errors propagate)."""
    try:
        return client.read(rtype, rid)
    except PluginError:
        return None


def reading_note(message: str, key: str) -> dict:
    """A warning OperationOutcome: the review reports it as a reading note."""
    return {
        "resourceType": "OperationOutcome",
        "id": f"unitguard-{key.replace('/', '-')}"[:64],
        "issue": [{"severity": "warning", "code": "incomplete", "diagnostics": message}],
    }
