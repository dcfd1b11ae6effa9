"""Review one visit from a parsed FHIR Bundle: the single code path ``review`` and batch share."""

from __future__ import annotations

from plugin.errors import InputError
from plugin.fhir.extract import build_visit
from plugin.fhir.index import index_bundle
from plugin.fhir.validation import first_problem
from plugin.policy import Policy, load_policy
from plugin.rules.engine import Report, review


def validate_resources(bundle: dict, source: str = "input") -> None:
    """Validate every entry against fhir.resources R4B models; InputError names the first bad one.

    Only on request (``--strict``): EHRs emit extensions and minor non-conformance that the
    reader tolerates, and full model validation costs far more than the review itself.
    """
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    for position, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        try:
            model = get_fhir_model_class(str(rtype))
        except (KeyError, ValueError) as exc:
            raise InputError(
                f"{source}: Bundle.entry[{position}] has unknown resourceType {rtype!r}"
            ) from exc
        try:
            model.model_validate(resource)
        except ValidationError as exc:
            raise InputError(
                f"{source}: Bundle.entry[{position}] ({rtype}/{resource.get('id')}) is not valid "
                f"FHIR R4 at {first_problem(exc)}"
            ) from exc


def review_bundle(
    bundle: object,
    encounter_id: str | None = None,
    method: str | None = None,
    policy: Policy | None = None,
    strict: bool = False,
    source: str = "input",
    code_map: dict[tuple[str, str], str] | None = None,
) -> Report:
    """Review the chosen Encounter of a parsed Bundle; InputError when it cannot be reviewed."""
    policy = policy or load_policy()
    try:
        index = index_bundle(bundle)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    if strict:
        validate_resources(bundle, source)  # type: ignore[arg-type]
    try:
        visit = build_visit(
            index, policy, encounter_id=encounter_id, method=method, code_map=code_map
        )
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    return review(visit, policy, quotes=True)
