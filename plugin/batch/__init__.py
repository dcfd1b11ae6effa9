"""Organisation-wide audit over FHIR Bulk Data NDJSON, and the synthetic data generator."""
