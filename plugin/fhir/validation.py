"""Say where a FHIR model validation failed, in one line (used by --strict and Task building)."""

from __future__ import annotations


def first_problem(exc) -> str:
    """``path.to.field: message`` of the first error of a pydantic ValidationError."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}"
