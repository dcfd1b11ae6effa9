"""Fetch an audit's input from a FHIR server with Bulk Data ``$export`` and SMART Backend
Services, into a folder the audit then reads like any other NDJSON folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plugin.errors import InputError

# What the review reads (contract.md section 2): the visit, its billing and its history.
EXPORT_TYPES = (
    "Patient",
    "Encounter",
    "Procedure",
    "Observation",
    "Goal",
    "Condition",
    "DocumentReference",
    "Claim",
    "ChargeItem",
    "Coverage",
    "ClaimResponse",  # payer-allowed amounts: the KX running total
    "ExplanationOfBenefit",
    "CoverageEligibilityResponse",  # a payer-reported year-to-date therapy amount
    "Practitioner",
    "PractitionerRole",
    "CarePlan",  # the episode: plans of care and who certified them
    "Provenance",
    "ServiceRequest",
    "Communication",
    "Binary",  # note text the DocumentReferences point at
)
BULK_SCOPE = "system/*.read"


@dataclass(frozen=True)
class ExportRequest:
    base_url: str
    client_id: str | None = None
    private_key: Path | None = None  # PEM, for the signed client assertion
    group: str | None = None
    since: str | None = None
    types: tuple[str, ...] = EXPORT_TYPES
    scope: str = BULK_SCOPE
    key_id: str | None = None  # the JWK kid the server knows; default: the key's thumbprint


def bulk_export(
    request: ExportRequest, folder: Path, progress: Callable[[str], None] | None = None
):
    """Run the export into ``folder``; any failure becomes one InputError naming the step."""
    from smart_launch.backend import BackendServices
    from smart_launch.bulk import BulkExport
    from smart_launch.discovery import Discovery
    from smart_launch.errors import FhirError, SmartLaunchError
    from smart_launch.http import make_session, origin

    if not request.base_url.startswith(("https://", "http://")):
        raise InputError(f"{request.base_url}: not a FHIR base URL")
    if (request.client_id is None) != (request.private_key is None):
        raise InputError("Bulk export: give both --client-id and --private-key, or neither")
    http = make_session()
    token = refresh = None
    try:
        if request.client_id and request.private_key:
            endpoint = Discovery(http).get(request.base_url.rstrip("/")).token_endpoint
            backend = BackendServices.from_pem_file(
                endpoint,
                request.client_id,
                request.private_key,
                request.scope,
                session=http,
                kid=request.key_id,
            )
            token, refresh = backend.token, backend.invalidate
        exporter = BulkExport(request.base_url, token=token, refresh=refresh, session=http)
        return exporter.run(folder, request.group, request.types, request.since, progress)
    except OSError as exc:
        raise InputError(f"{request.private_key}: cannot read the key ({exc.strerror})") from exc
    except (FhirError, SmartLaunchError, ValueError) as exc:
        raise InputError(f"Bulk export from {origin(request.base_url)} failed: {exc}") from exc
