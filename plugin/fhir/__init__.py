"""Pure extraction from FHIR R4 JSON (dicts) into the plain visit model."""

from plugin.fhir.extract import build_visit, encounter_ids, index_bundle

__all__ = ["build_visit", "encounter_ids", "index_bundle"]
