"""Reading a visit from a live EHR's FHIR server (Epic, Oracle Health, or a full server)."""

from plugin.ehr.fetch import FetchError, FetchStats, fetch_visit
from plugin.ehr.reader import FhirReader, SearchResult
from plugin.ehr.strategy import Strategy

__all__ = ["FetchError", "FetchStats", "FhirReader", "SearchResult", "Strategy", "fetch_visit"]
