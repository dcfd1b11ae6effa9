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


# The error codes of an OAuth 2.0 authorization response (RFC 6749 section 4.1.2.1), in our
# words. The server's ``error_description`` is never shown, nor an unknown code: both arrive in
# the redirect's query string, which anyone can write into a link.
AUTHORIZATION_ERRORS = {
    "access_denied": "The sign-in was refused or cancelled at the EHR.",
    "invalid_request": "The EHR found the sign-in request malformed; launch the app again.",
    "unauthorized_client": "The EHR does not let unitguard sign in this way; tell your "
    "administrator.",
    "unsupported_response_type": "The EHR does not support unitguard's way of signing in; tell "
    "your administrator.",
    "invalid_scope": "The EHR refused the access unitguard asks for; tell your administrator.",
    "server_error": "The EHR's sign-in failed; try again.",
    "temporarily_unavailable": "The EHR's sign-in is busy; try again in a moment.",
}


def authorization_denied(code: object) -> AuthorizationDenied:
    """The error for an authorization response carrying ``error``: our text for its code."""
    if isinstance(code, str) and code in AUTHORIZATION_ERRORS:
        return AuthorizationDenied(AUTHORIZATION_ERRORS[code], code)
    return AuthorizationDenied("The EHR refused the sign-in.")


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
