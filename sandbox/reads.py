"""FHIR reads in the sandbox: search (paging, _sort, _include, _revinclude), read, vread and
history, each within the token's patient compartment."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from flask import Flask, Response, request

from sandbox.access import guard, in_compartment
from sandbox.outcome import FHIR_JSON, outcome, outcome_resource
from sandbox.search import matches, sort_key
from sandbox.state import Sandbox
from sandbox.store import nested_refs, references


def install_reads(app: Flask, sandbox: Sandbox, fhir: str) -> None:
    """Add the search, read, vread and history interactions to the sandbox app."""

    @app.get("/fhir/<rtype>")
    def search(rtype: str):
        allowed = sandbox.profile.search.get(rtype)
        if allowed is None:
            return outcome(404, "not-supported", f"{rtype} is not served here")
        refused, patient = guard(sandbox, rtype, "s")
        if refused:
            return refused
        pairs = [(k, v) for k, v in request.args.items(multi=True) if k != "_offset"]
        params = dict(pairs)
        unknown = sorted(set(params) - allowed - {"_include", "_revinclude"})
        if unknown:
            return outcome(
                400, "not-supported", f"search parameter {unknown[0]} is not supported for {rtype}"
            )
        refusal = sandbox.profile.refusal(rtype, pairs)
        if refusal:
            return outcome(400, "invalid", refusal)
        try:
            count = int(params.get("_count", 50) or 50)
            offset = int(request.args.get("_offset", 0) or 0)
        except ValueError:
            return outcome(400, "invalid", "_count and _offset must be whole numbers")
        found = [
            r
            for r in sandbox.store.all(rtype)
            if in_compartment(sandbox, r, patient)
            and all(matches(r, k, v) for k, v in pairs if not k.startswith("_") or k == "_id")
        ]
        if "_sort" in params:
            key, descending = sort_key(params["_sort"])
            found.sort(key=key, reverse=descending)
        count = max(1, min(count, sandbox.faults.page_size or sandbox.profile.page_cap))
        page = found[offset : offset + count]
        entries = [
            {"fullUrl": f"{fhir}/{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page
        ]
        links = [{"relation": "self", "url": request.url}]
        if offset + count < len(found):
            query = {**request.args.to_dict(), "_offset": str(offset + count)}
            links.append({"relation": "next", "url": f"{fhir}/{rtype}?{urlencode(query)}"})
        entries += _included(
            page, request.args.getlist("_include"), request.args.getlist("_revinclude"), patient
        )
        if sandbox.profile.outcome_entries:
            entries.append(
                {
                    "search": {"mode": "outcome"},
                    "resource": outcome_resource(
                        "informational",
                        "Some results may not be returned (epic profile)",
                        "information",
                    ),
                }
            )
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": links,
            "entry": entries,
        }
        return Response(orjson.dumps(bundle), mimetype=FHIR_JSON)

    def _included(
        page: list[dict], includes: list[str], revincludes: list[str], patient: str | None
    ) -> list[dict]:
        """Entries for _include=Type:field and _revinclude=Type:param (search mode include)."""
        seen = {f"{r['resourceType']}/{r['id']}" for r in page}
        extra = []
        for spec in includes:
            source, _, field = spec.partition(":")
            for resource in page:
                if resource.get("resourceType") != source:
                    continue
                for ref in nested_refs(resource.get(field)):
                    rtype, _, rid = ref.partition("/")
                    found = sandbox.store.get(rtype, rid)
                    if found and ref not in seen and in_compartment(sandbox, found[0], patient):
                        seen.add(ref)
                        extra.append(found[0])
        for spec in revincludes:
            source, _, param = spec.partition(":")
            targets = {f"{r['resourceType']}/{r['id']}" for r in page}
            for resource in sandbox.store.all(source):
                key = f"{source}/{resource['id']}"
                if key not in seen and any(r in targets for r in references(resource, param)):
                    seen.add(key)
                    extra.append(resource)
        return [
            {
                "fullUrl": f"{fhir}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "include"},
            }
            for r in extra
        ]

    def _readable(rtype: str, rid: str) -> tuple[Response | None, tuple[dict, int] | None]:
        """(None, (resource, version)) when the caller may read it, else (OperationOutcome,
        None): for read, vread and _history alike."""
        if rtype not in sandbox.profile.search and rtype not in sandbox.profile.read_only:
            return outcome(404, "not-supported", f"{rtype} is not served here"), None
        refused, patient = guard(sandbox, rtype, "r")
        if refused:
            return refused, None
        found = sandbox.store.get(rtype, rid)
        if found is None or not in_compartment(sandbox, found[0], patient):
            return outcome(404, "not-found", f"{rtype}/{rid} is not known"), None
        return None, found

    @app.get("/fhir/<rtype>/<rid>")
    def read(rtype: str, rid: str):
        refused, found = _readable(rtype, rid)
        if refused or found is None:
            return refused
        response = Response(orjson.dumps(found[0]), mimetype=FHIR_JSON)
        response.headers["ETag"] = f'W/"{found[1]}"'
        return response

    @app.get("/fhir/<rtype>/<rid>/_history/<vid>")
    def vread(rtype: str, rid: str, vid: str):
        refused, _ = _readable(rtype, rid)
        if refused:
            return refused
        body = sandbox.store.version(rtype, rid, int(vid)) if vid.isdigit() else None
        if body is None:
            return outcome(404, "not-found", f"{rtype}/{rid} has no version {vid}")
        response = Response(orjson.dumps(body), mimetype=FHIR_JSON)
        response.headers["ETag"] = f'W/"{vid}"'
        return response

    @app.get("/fhir/<rtype>/<rid>/_history")
    def history(rtype: str, rid: str):
        refused, _ = _readable(rtype, rid)
        if refused:
            return refused
        entries = []
        for body in sandbox.store.history(rtype, rid):
            meta = body.get("meta") or {}
            number = meta.get("versionId", "1")
            created = number == "1"
            entries.append(
                {
                    "fullUrl": f"{fhir}/{rtype}/{rid}",
                    "resource": body,
                    "request": {
                        "method": "POST" if created else "PUT",
                        "url": rtype if created else f"{rtype}/{rid}",
                    },
                    "response": {
                        "status": "201 Created" if created else "200 OK",
                        "etag": f'W/"{number}"',
                        "lastModified": meta.get("lastUpdated"),
                    },
                }
            )
        bundle = {
            "resourceType": "Bundle",
            "type": "history",
            "total": len(entries),
            "link": [{"relation": "self", "url": request.url}],
            "entry": entries,
        }
        return Response(orjson.dumps(bundle), mimetype=FHIR_JSON)
