"""Fill a sandbox EHR from a folder: fixture Bundles and Bulk NDJSON, the all-patients Group and
the coding staff; and how the demo and the tests register unitguard with it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import orjson

from sandbox.auth import Grants
from sandbox.profiles import PROFILES
from sandbox.state import Sandbox
from sandbox.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _serve_from_here(resource: dict, fhir_base: str | None, own: str | None = None) -> dict:
    """A DocumentReference whose note sits in a Binary on a vendor's own server (absolute
    URL, as Oracle Health writes it) points at this server's Binary instead, as the vendor's
    own server would answer: the sandbox stands in for that EHR. A Binary on another host than
    the vendor's own (``own``: the origin of the entry's fullUrl; Oracle's published examples
    put Binaries on another host than the sandbox base) points at this server under its other
    loopback name (127.0.0.1 <-> localhost): another host to a client, so the EHR list must
    name it (binary_hosts) for the note to be read."""
    if fhir_base is None or resource.get("resourceType") != "DocumentReference":
        return resource
    alias = _other_name(fhir_base)
    for content in resource.get("content") or []:
        attachment = (content or {}).get("attachment") or {}
        url = attachment.get("url")
        if isinstance(url, str) and url.startswith("http") and "/Binary/" in url:
            rid = url.rsplit("/Binary/", 1)[1]
            elsewhere = own is not None and origin(url) != own and alias is not None
            attachment["url"] = f"{alias if elsewhere else fhir_base}/Binary/{rid}"
    return resource


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _other_name(fhir_base: str) -> str | None:
    """The same loopback server under its other name, or None when it is not on loopback."""
    for name, other in (("//127.0.0.1:", "//localhost:"), ("//localhost:", "//127.0.0.1:")):
        if name in fhir_base:
            return fhir_base.replace(name, other, 1)
    return None


def load_bundles(store: Store, folder: Path, fhir_base: str | None = None) -> list[str]:
    """Load every *.json Bundle in the folder, keeping ids; a bad file is reported and skipped.

    With ``fhir_base``, absolute Binary URLs of note attachments are re-pointed at it (those on
    another host than their entry's fullUrl at its other loopback name)."""
    problems = []
    for path in sorted(folder.glob("*.json")):
        try:
            bundle = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            problems.append(f"{path.name}: not JSON ({exc})")
            continue
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            continue
        for entry in bundle.get("entry") or []:
            resource = (entry or {}).get("resource")
            if isinstance(resource, dict) and resource.get("resourceType") not in (
                None,
                "OperationOutcome",
            ):
                full_url = (entry or {}).get("fullUrl")
                own = origin(full_url) if isinstance(full_url, str) and "://" in full_url else None
                store.put(_serve_from_here(resource, fhir_base, own))
    return problems


def load_ndjson(store: Store, folder: Path) -> list[str]:
    """Load every *.ndjson file (Bulk Data output, e.g. from ``unitguard synth``)."""
    problems = []
    for path in sorted(folder.glob("*.ndjson")):
        with path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError:
                    problems.append(f"{path.name}:{number}: not JSON")
                    continue
                if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                    store.put(resource)
    return problems


ALL_PATIENTS_GROUP = "all-patients"
CODER_USER = "Practitioner/coder-1"  # on the demo's coder list
CODER_ROLE_SYSTEM = "https://unitguard.example.org/sandbox/role"
CODER_ROLE_CODE = "coding-specialist"  # the demo's coder_role_codes


def add_coding_staff(store: Store) -> None:
    """The sandbox's coders (invented people): Casey Coder is on the app's coder list; Robin
    Role is a coder through a PractitionerRole coded ``coding-specialist``; Taylor Frontdesk
    is neither (a user the queue refuses)."""
    for rid, given, family in (
        ("coder-1", "Casey", "Coder"),
        ("coder-2", "Robin", "Role"),
        ("frontdesk-1", "Taylor", "Frontdesk"),
    ):
        store.put(
            {
                "resourceType": "Practitioner",
                "id": rid,
                "name": [{"given": [given], "family": family}],
            }
        )
    store.put(
        {
            "resourceType": "PractitionerRole",
            "id": "coder-2-role",
            "active": True,
            "practitioner": {"reference": "Practitioner/coder-2"},
            "code": [{"coding": [{"system": CODER_ROLE_SYSTEM, "code": CODER_ROLE_CODE}]}],
        }
    )


def add_patient_group(store: Store) -> None:
    """One Group holding every loaded patient: Epic and Oracle Health export by Group."""
    members = [{"entity": {"reference": f"Patient/{p['id']}"}} for p in store.all("Patient")]
    store.put(
        {
            "resourceType": "Group",
            "id": ALL_PATIENTS_GROUP,
            "type": "person",
            "actual": True,
            "name": "All therapy patients (sandbox)",
            "quantity": len(members),
            "member": members,
        }
    )


def build_sandbox(
    profile: str = "full",
    data_dir: Path | None = FIXTURES,
    open_access: bool = False,
    base_url: str = "http://127.0.0.1:8090",
    app_launch_url: str = "http://127.0.0.1:8080/launch",
) -> Sandbox:
    store = Store()
    if data_dir is not None:
        load_bundles(store, data_dir, f"{base_url}/fhir")
        load_ndjson(store, data_dir)
        add_patient_group(store)
        add_coding_staff(store)
    return Sandbox(
        store, PROFILES[profile], Grants(f"{base_url}/fhir"), open_access, app_launch_url
    )


# How the demo and the tests register unitguard with the sandbox: the scopes it asks for and
# the coders its queue admits (the sandbox's own coding staff above).
APP_SCOPES = (
    "launch",
    "openid",
    "fhirUser",
    "offline_access",
    "patient/*.rs",
    "user/Task.cu",
    "user/Practitioner.rs",
    "user/PractitionerRole.rs",
)
CODERS = (CODER_USER,)
CODER_ROLE_CODES = (CODER_ROLE_CODE,)
