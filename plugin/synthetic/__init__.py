"""Realistic synthetic FHIR R4 visits (no real patient data) for tests, fixtures, benchmarks and
``unitguard synth``: ``visit`` builds one visit's Bundle from the resources of ``resources``."""
