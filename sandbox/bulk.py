"""FHIR Bulk Data export in the sandbox (Bulk Data Access IG v2): kick-off, status polling,
NDJSON downloads, and deletion of a finished or running export.

- ``GET /fhir/Group/{id}/$export``: every profile (Epic and Oracle Health export by Group);
  ``GET /fhir/$export`` and ``/fhir/Patient/$export``: the ``full`` profile only.
- Kick-off needs ``Prefer: respond-async`` and a token whose scopes read every exported type
  without a patient restriction (``system/*.read`` or ``system/Type.rs``); it answers 202 with
  ``Content-Location``.
- The status URL answers 202 with ``Retry-After`` and ``X-Progress`` for the first
  ``faults.export_polls`` polls, then 200 with the manifest (``requiresAccessToken: true``).
- Files hold at most ``faults.export_file_lines`` resources, so a type may span several files.

The export is a snapshot taken at kick-off, kept in memory: the sandbox is for tests and demos.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, request

from sandbox.auth import allows
from sandbox.store import references

NDJSON = "application/fhir+ndjson"
# Types outside the patient compartment that a visit review reads (performers, organisations).
SHARED_TYPES = ("Practitioner", "PractitionerRole", "Organization")


@dataclass
class ExportJob:
    request: str
    transaction_time: str
    files: dict[str, list[bytes]] = field(default_factory=dict)  # name -> NDJSON lines
    types: dict[str, str] = field(default_factory=dict)  # name -> resource type
    polls: int = 0


@dataclass
class Exports:
    jobs: dict[str, ExportJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def install_bulk(app: Flask, sandbox, fhir: str, outcome: Callable, grant_of: Callable) -> None:
    """Add the Bulk Data routes to the sandbox app. ``grant_of()`` is the request's grant or
    None; ``outcome(status, code, text)`` builds an OperationOutcome response."""
    exports = Exports()

    def authorised(types: list[str]) -> Response | None:
        if sandbox.open_access:
            return None
        grant = grant_of()
        if grant is None:
            response = outcome(401, "login", "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="sandbox"'
            return response
        for rtype in types:
            ok, patient = allows(grant, rtype, "r")
            if not ok or patient is not None:
                return outcome(
                    403, "forbidden", f"bulk export needs system/ read access to {rtype}"
                )
        return None

    def kick_off(patients: set[str] | None):
        if request.headers.get("Prefer", "").lower().find("respond-async") < 0:
            return outcome(400, "invalid", "bulk export needs the header Prefer: respond-async")
        output_format = request.args.get("_outputFormat", NDJSON)
        if output_format not in (NDJSON, "application/ndjson", "ndjson"):
            return outcome(400, "not-supported", f"_outputFormat {output_format} not supported")
        stored = set(sandbox.store.types())
        wanted = [t for t in request.args.get("_type", "").split(",") if t.strip()]
        types = sorted(t.strip() for t in wanted) if wanted else sorted(stored)
        refused = authorised(types)
        if refused:
            return refused
        since = request.args.get("_since")
        job = ExportJob(
            request=request.url,
            transaction_time=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        size = max(1, sandbox.faults.export_file_lines)
        for rtype in types:
            lines = [
                orjson.dumps(r)
                for r in sandbox.store.all(rtype)
                if _in_export(r, patients)
                and (not since or (r.get("meta") or {}).get("lastUpdated", "") >= since)
            ]
            for n, start in enumerate(range(0, len(lines), size), start=1):
                name = f"{rtype}-{n}.ndjson"
                job.files[name] = lines[start : start + size]
                job.types[name] = rtype
        job_id = secrets.token_urlsafe(12)
        with exports.lock:
            exports.jobs[job_id] = job
        response = Response(status=202)
        response.headers["Content-Location"] = f"{fhir}/$export-status/{job_id}"
        return response

    @app.get("/fhir/$export")
    def export_system():
        if sandbox.profile.name != "full":
            return outcome(404, "not-supported", "system-level export is not offered; use Group")
        return kick_off(None)

    @app.get("/fhir/Patient/$export")
    def export_patients():
        if sandbox.profile.name != "full":
            return outcome(404, "not-supported", "patient-level export is not offered; use Group")
        return kick_off(None)

    @app.get("/fhir/Group/<group_id>/$export")
    def export_group(group_id: str):
        found = sandbox.store.get("Group", group_id)
        if found is None:
            return outcome(404, "not-found", f"Group/{group_id} is not known")
        members = {
            ref.split("/")[-1]
            for member in found[0].get("member") or []
            if isinstance(member, dict)
            for ref in [((member.get("entity") or {}).get("reference") or "")]
            if ref.startswith("Patient/")
        }
        return kick_off(members)

    @app.get("/fhir/$export-status/<job_id>")
    def export_status(job_id: str):
        refused = authorised([])
        if refused:
            return refused
        with exports.lock:
            job = exports.jobs.get(job_id)
            if job is None:
                return outcome(404, "not-found", "no such export (finished and deleted?)")
            job.polls += 1
            waiting = job.polls <= sandbox.faults.export_polls
        if waiting:
            response = Response(status=202)
            response.headers["Retry-After"] = str(sandbox.faults.retry_after)
            response.headers["X-Progress"] = f"poll {job.polls}: preparing files"
            return response
        manifest = {
            "transactionTime": job.transaction_time,
            "request": job.request,
            "requiresAccessToken": True,
            "output": [
                {
                    "type": job.types[name],
                    "url": f"{fhir}/$export-file/{job_id}/{name}",
                    "count": len(lines),
                }
                for name, lines in job.files.items()
            ],
            "error": [],
        }
        return Response(orjson.dumps(manifest), mimetype="application/json")

    @app.delete("/fhir/$export-status/<job_id>")
    def export_delete(job_id: str):
        refused = authorised([])
        if refused:
            return refused
        with exports.lock:
            if exports.jobs.pop(job_id, None) is None:
                return outcome(404, "not-found", "no such export")
        return Response(status=202)

    @app.get("/fhir/$export-file/<job_id>/<name>")
    def export_file(job_id: str, name: str):
        with exports.lock:
            job = exports.jobs.get(job_id)
            lines = job.files.get(name) if job else None
            rtype = job.types.get(name) if job else None
        if lines is None or rtype is None:
            return outcome(404, "not-found", "no such export file")
        refused = authorised([rtype])
        if refused:
            return refused
        return Response(b"".join(line + b"\n" for line in lines), mimetype=NDJSON)


def _in_export(resource: dict, patients: set[str] | None) -> bool:
    """Whether a resource belongs to an export of these patients (None: everyone)."""
    if patients is None or resource.get("resourceType") in SHARED_TYPES:
        return True
    if resource.get("resourceType") == "Patient":
        return resource.get("id") in patients
    refs = references(resource, "patient")
    return any(r.split("/")[-1] in patients for r in refs)
