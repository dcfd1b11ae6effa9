"""SMART App Launch client and FHIR client (framework-free)."""
