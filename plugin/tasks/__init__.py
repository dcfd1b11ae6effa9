"""Coding-review Tasks: built from a review, kept in the app's own FHIR Task store, delivered."""
