"""Who may read or write what: the request's bearer token, its scopes and its patient."""

from __future__ import annotations

from flask import request

from sandbox.auth import allows
from sandbox.outcome import outcome
from sandbox.state import Sandbox
from sandbox.store import references


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def guard(sandbox: Sandbox, rtype: str, action: str):
    """(error response or None, patient restriction)."""
    if sandbox.open_access:
        return None, None
    grant = sandbox.grants.grant_for(bearer())
    if grant is None:
        response = outcome(401, "login", "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="sandbox"'
        return response, None
    ok, patient = allows(grant, rtype, action)
    if not ok:
        return outcome(403, "forbidden", f"scope does not allow {action} on {rtype}"), None
    return None, patient


def in_compartment(sandbox: Sandbox, resource: dict, patient: str | None) -> bool:
    if patient is None:
        return True
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient
    if resource.get("resourceType") == "Binary":
        # A Binary belongs where its securityContext (the note's DocumentReference) does.
        ref = (resource.get("securityContext") or {}).get("reference")
        parts = ref.split("/") if isinstance(ref, str) else []
        if len(parts) < 2:
            return True
        owner = sandbox.store.get(parts[-2], parts[-1])
        return owner is not None and in_compartment(sandbox, owner[0], patient)
    refs = references(resource, "patient")
    return not refs or any(r.split("/")[-1] == patient for r in refs)


def writable(resource: dict, patient: str | None) -> bool:
    """Whether a token limited to ``patient`` may write ``resource``: it must belong to
    that patient (every patient reference it holds is theirs, and it holds one)."""
    if patient is None:
        return True
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient
    refs = references(resource, "patient")
    return bool(refs) and all(r.split("/")[-1] == patient for r in refs)
