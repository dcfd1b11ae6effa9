"""Pure extraction from FHIR R4 JSON (dicts) into the plain visit model."""

from plugin.fhir.encounters import encounter_ids
from plugin.fhir.extract import build_visit
from plugin.fhir.index import index_bundle

__all__ = ["build_visit", "encounter_ids", "index_bundle"]
