"""SMART App Launch client and FHIR client (framework-free; smart_launch.flask is the adapter)."""

from smart_launch.client import FhirClient, SearchResult
from smart_launch.discovery import Discovery, SmartConfiguration
from smart_launch.errors import (
    FhirConflict,
    FhirError,
    FhirRequestError,
    IssuerNotAllowed,
    SmartLaunchError,
    StateMismatch,
)
from smart_launch.flow import finish_launch, refresh, revoke, start_launch
from smart_launch.http import make_session
from smart_launch.registry import RegisteredEhr, Registry, load_registry
from smart_launch.state import LaunchState, StateStore
from smart_launch.tokens import LaunchContext, TokenSet

__all__ = [
    "Discovery",
    "FhirClient",
    "FhirConflict",
    "FhirError",
    "FhirRequestError",
    "IssuerNotAllowed",
    "LaunchContext",
    "LaunchState",
    "RegisteredEhr",
    "Registry",
    "SearchResult",
    "SmartConfiguration",
    "SmartLaunchError",
    "StateMismatch",
    "StateStore",
    "TokenSet",
    "finish_launch",
    "load_registry",
    "make_session",
    "refresh",
    "revoke",
    "start_launch",
]
