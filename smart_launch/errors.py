"""Errors of the SMART launch and the FHIR client; messages never carry tokens or patient data.

SmartLaunchError(error, description)
 +-- IssuerNotAllowed      a launch from an issuer that is not registered
 +-- DiscoveryFailed       .well-known/smart-configuration missing, unreadable or without S256
 +-- AuthorizationDenied   the authorization server answered with an error
 +-- StateMismatch         unknown, replayed or foreign state
 +-- StateExpired          the launch took too long
 +-- TokenExchangeFailed   the token endpoint refused the code or the refresh
 +-- MissingLaunchContext  the token response lacks the patient or encounter
FhirError
 +-- FhirRequestError      an HTTP error from the FHIR server (status, OperationOutcome text)
      +-- FhirConflict     412: the resource changed since it was read
"""

from __future__ import annotations


class SmartLaunchError(Exception):
    error = "smart_launch_error"

    def __init__(self, description: str, error: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        if error:
            self.error = error


class IssuerNotAllowed(SmartLaunchError):
    error = "issuer_not_allowed"


class DiscoveryFailed(SmartLaunchError):
    error = "discovery_failed"


class AuthorizationDenied(SmartLaunchError):
    error = "access_denied"


class StateMismatch(SmartLaunchError):
    error = "state_mismatch"


class StateExpired(SmartLaunchError):
    error = "state_expired"


class TokenExchangeFailed(SmartLaunchError):
    error = "token_exchange_failed"


class MissingLaunchContext(SmartLaunchError):
    error = "missing_launch_context"


class FhirError(Exception):
    """Base of the FHIR client's errors."""


class FhirRequestError(FhirError):
    def __init__(self, status: int | None, url: str, detail: str) -> None:
        # Only the path: a query string may hold a patient id.
        path = url.split("?", 1)[0]
        super().__init__(f"FHIR server answered {status or 'no response'} for {path}: {detail}")
        self.status, self.path, self.detail = status, path, detail


class FhirConflict(FhirRequestError):
    """HTTP 412: someone else changed the resource."""
