"""What one sandbox EHR holds: its store, vendor profile, grants and test fault switches."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.auth import Grants
from sandbox.profiles import Profile
from sandbox.store import Store


@dataclass
class Faults:
    """Test switches: make the server slow, throttled, failing or paging one entry at a time."""

    delay: float = 0.0
    throttle: int = 0  # next N FHIR requests get 429 with Retry-After
    retry_after: int = 1
    fail: int = 0  # next N FHIR requests get 500
    page_size: int | None = None
    export_polls: int = 1  # Bulk export: status polls answered 202 before the manifest
    export_file_lines: int = 1000  # Bulk export: resources per NDJSON file


@dataclass
class Sandbox:
    store: Store
    profile: Profile
    grants: Grants
    open_access: bool = False
    app_launch_url: str = "http://127.0.0.1:8080/launch"
    faults: Faults = field(default_factory=Faults)
