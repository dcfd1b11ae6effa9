"""Reading a visit from a live EHR's FHIR server (Epic, Oracle Health, or a full server)."""

from plugin.ehr.fetch import (
    FetchError,
    FetchStats,
    FhirReader,
    SearchResult,
    Strategy,
    fetch_visit,
)

__all__ = ["FetchError", "FetchStats", "FhirReader", "SearchResult", "Strategy", "fetch_visit"]
