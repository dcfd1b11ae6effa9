"""The sandbox EHR as a Flask app: FHIR API under /fhir, SMART endpoints, the chart page."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import orjson
from fhir.resources.R4B import get_fhir_model_class
from flask import Flask, Response, abort, redirect, render_template_string, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from sandbox.auth import Client, Grants, allows
from sandbox.bulk import install_bulk
from sandbox.cors import install_cors
from sandbox.profiles import CONTROL, PARAM_TYPES, Profile
from sandbox.search import matches, sort_key
from sandbox.store import Conflict, Store, nested_refs, references

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"
JSON_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")
JSON_FORMATS = ("json", *JSON_TYPES)
NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson")  # Bulk Data files
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OUTCOME_CODES = {404: "not-found", 405: "not-supported", 406: "not-supported"}


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


def outcome_resource(code: str, text: str, severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def outcome(status: int, code: str, text: str, severity: str = "error") -> Response:
    body = outcome_resource(code, text, severity)
    return Response(orjson.dumps(body), status=status, mimetype=FHIR_JSON)


def _serve_from_here(resource: dict, fhir_base: str | None) -> dict:
    """A DocumentReference whose note sits in a Binary on a vendor's own server (absolute
    URL, as Oracle Health writes it) points at this server's Binary instead, as the vendor's
    own server would answer: the sandbox stands in for that EHR."""
    if fhir_base is None or resource.get("resourceType") != "DocumentReference":
        return resource
    for content in resource.get("content") or []:
        attachment = (content or {}).get("attachment") or {}
        url = attachment.get("url")
        if isinstance(url, str) and url.startswith("http") and "/Binary/" in url:
            attachment["url"] = f"{fhir_base}/Binary/{url.rsplit('/Binary/', 1)[1]}"
    return resource


def load_bundles(store: Store, folder: Path, fhir_base: str | None = None) -> list[str]:
    """Load every *.json Bundle in the folder, keeping ids; a bad file is reported and skipped.

    With ``fhir_base``, absolute Binary URLs of note attachments are re-pointed at it."""
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
                store.put(_serve_from_here(resource, fhir_base))
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


def validate(resource: dict) -> str | None:
    try:
        get_fhir_model_class(resource.get("resourceType", "")).model_validate(resource)
    except (KeyError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return f"unknown resourceType {resource.get('resourceType')!r}"
    return None


def create_app(sandbox: Sandbox, base_url: str) -> Flask:
    app = Flask(__name__)
    app.extensions["sandbox"] = sandbox
    fhir = base_url.rstrip("/") + "/fhir"

    def bearer() -> str | None:
        header = request.headers.get("Authorization", "")
        return header[7:].strip() if header.startswith("Bearer ") else None

    def guard(rtype: str, action: str):
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

    def in_compartment(resource: dict, patient: str | None) -> bool:
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
            return owner is not None and in_compartment(owner[0], patient)
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

    @app.before_request
    def misbehave():
        if not request.path.startswith("/fhir") or ".well-known" in request.path:
            return None
        faults = sandbox.faults
        if faults.delay:
            time.sleep(faults.delay)
        if faults.throttle > 0:
            faults.throttle -= 1
            response = outcome(429, "throttled", "too many requests")
            response.headers["Retry-After"] = str(faults.retry_after)
            return response
        if faults.fail > 0:
            faults.fail -= 1
            return outcome(500, "exception", "simulated server failure")
        return None

    @app.before_request
    def negotiate():
        """JSON only, as both vendors' sandboxes are used here: asking for XML gets 406."""
        if not request.path.startswith("/fhir") or ".well-known" in request.path:
            return None
        wanted = request.args.get("_format")
        if wanted is not None and wanted.split(";")[0].strip() not in JSON_FORMATS:
            return outcome(406, "not-supported", f"_format {wanted} is not served: JSON only")
        accept = request.accept_mimetypes
        if accept and not any(accept.quality(t) for t in JSON_TYPES + NDJSON_TYPES):
            return outcome(406, "not-supported", "only application/fhir+json is served")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Under /fhir every error is an OperationOutcome (404 unknown path, 405 method...)."""
        if not request.path.startswith("/fhir") or (exc.code or 500) < 400:
            return exc
        status = exc.code or 500
        text = f"{request.method} {request.path}: {exc.name}"
        return outcome(status, OUTCOME_CODES.get(status, "processing"), text)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("sandbox error")
        if not request.path.startswith("/fhir"):
            return Response("internal error", status=500, mimetype="text/plain")
        return outcome(500, "exception", "the sandbox failed on this request")

    def openid_configuration():
        return {
            "issuer": fhir,
            "jwks_uri": f"{base_url}/oauth/jwks",
            "authorization_endpoint": f"{base_url}/oauth/authorize",
            "token_endpoint": f"{base_url}/oauth/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "response_modes_supported": ["query"],
        }

    # OpenID Connect discovery: at the issuer (the FHIR base, the id_token's iss) and at the root.
    app.add_url_rule("/fhir/.well-known/openid-configuration", "openid_fhir", openid_configuration)
    app.add_url_rule("/.well-known/openid-configuration", "openid_root", openid_configuration)

    @app.get("/oauth/jwks")
    def jwks():
        """The public key that signs id_tokens."""
        return {"keys": [sandbox.grants.signing_key.as_dict(private=False)]}

    @app.get("/fhir/.well-known/smart-configuration")
    def smart_configuration():
        return {
            "issuer": fhir,
            "jwks_uri": f"{base_url}/oauth/jwks",
            "authorization_endpoint": f"{base_url}/oauth/authorize",
            "token_endpoint": f"{base_url}/oauth/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "private_key_jwt",
                "none",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": [
                "launch",
                "launch/patient",
                "openid",
                "fhirUser",
                "offline_access",
            ],
            "capabilities": [
                "launch-ehr",
                "launch-standalone",
                "client-public",
                "client-confidential-symmetric",
                "client-confidential-asymmetric",
                "context-ehr-patient",
                "context-ehr-encounter",
                "permission-v1",
                "permission-v2",
                "permission-offline",
                "sso-openid-connect",
            ],
        }

    @app.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize():
        """Authorize; a standalone launch asking for a patient gets the picker first, whose
        form posts the same request back with the chosen patient."""
        args = {**request.args.to_dict(), **request.form.to_dict()}
        chosen = args.pop("sandbox_patient", None)
        user = args.pop("sandbox_user", None)
        picked = None
        if request.method == "POST" and chosen is not None:
            picked = picked_context(chosen, "launch/encounter" in args.get("scope", "").split())
            if picked is None:
                return Response("unknown patient", status=400, mimetype="text/plain")
        if request.method == "POST" and user is not None:
            if (
                not user.startswith("Practitioner/")
                or sandbox.store.get("Practitioner", user.split("/", 1)[1]) is None
            ):
                return Response("unknown user", status=400, mimetype="text/plain")
            picked = {"user": user}
        status, target = sandbox.grants.authorize(args, picked)
        if status == 302:
            return redirect(target)
        if status == 200 and target == "user":
            users = [
                (f"Practitioner/{p['id']}", patient_name(p))
                for p in sandbox.store.all("Practitioner")
                if p.get("id")
            ]
            return render_template_string(SIGN_IN, args=args, users=users)
        if status == 200:
            patients = [
                (p["id"], patient_name(p)) for p in sandbox.store.all("Patient") if p.get("id")
            ]
            return render_template_string(PICKER, args=args, patients=patients)
        return Response(target, status=400, mimetype="text/plain")

    def picked_context(patient: str, with_encounter: bool) -> dict | None:
        """The launch context of a patient picked in a standalone launch: that patient, the
        default user and, when asked for, the patient's latest visit."""
        if sandbox.store.get("Patient", patient) is None:
            return None
        encounter = None
        if with_encounter:
            visits = [
                e
                for e in sandbox.store.all("Encounter")
                if any(r.split("/")[-1] == patient for r in references(e, "patient"))
            ]
            visits.sort(key=lambda e: (e.get("period") or {}).get("start", ""))
            encounter = visits[-1]["id"] if visits else None
        return {"patient": patient, "encounter": encounter, "user": "Practitioner/pt"}

    @app.post("/oauth/token")
    def token():
        auth = request.authorization
        basic = (auth.username, auth.password) if auth and auth.type == "basic" else None
        status, body = sandbox.grants.token(
            request.form.to_dict(), basic, f"{base_url}/oauth/token"
        )
        response = Response(orjson.dumps(body), status=status, mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/fhir/metadata")
    def metadata():
        return Response(orjson.dumps(capability_statement()), mimetype=FHIR_JSON)

    def capability_statement() -> dict:
        """Shaped like the vendors' published CapabilityStatements: every searchParam with its
        type, the SMART OAuth URIs under rest.security (valid FHIR R4)."""
        profile = sandbox.profile
        resources = []
        for rtype, params in sorted(profile.search.items()):
            codes = ["read", "vread", "history-instance", "search-type"]
            codes += ["create"] * (rtype in profile.create) + ["update"] * (rtype in profile.update)
            revinclude = list(profile.revinclude.get(rtype, ()))
            resources.append(
                {
                    **({"searchRevInclude": revinclude} if revinclude else {}),
                    "type": rtype,
                    "interaction": [{"code": c} for c in codes],
                    "versioning": "versioned",
                    "readHistory": True,
                    "conditionalCreate": profile.conditional_create,
                    "searchParam": [
                        {"name": p, "type": PARAM_TYPES[p]} for p in sorted(params - CONTROL)
                    ],
                }
            )
        for rtype in sorted(profile.read_only - set(profile.search)):
            # read, never searched: note text, as Epic and Oracle Health serve it
            resources.append({"type": rtype, "interaction": [{"code": "read"}, {"code": "vread"}]})
        security = {
            "cors": True,
            "service": [
                {
                    "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                    "text": "OAuth2 using SMART-on-FHIR profile",
                }
            ],
            "extension": [
                {
                    "url": SMART_OAUTH_URIS,
                    "extension": [
                        {"url": "authorize", "valueUri": f"{base_url}/oauth/authorize"},
                        {"url": "token", "valueUri": f"{base_url}/oauth/token"},
                    ],
                }
            ],
        }
        vendor = profile.vendor or {}
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-01",
            "kind": "instance",
            "software": {"name": f"unitguard sandbox ({profile.name} profile)"},
            **{k: v for k, v in vendor.items() if k != "implementation"},
            "implementation": {
                "description": "unitguard sandbox FHIR server (synthetic data only)",
                **vendor.get("implementation", {}),
                "url": fhir,
            },
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": security,
                    "resource": resources,
                    "operation": [
                        {
                            "name": "export",
                            "definition": "http://hl7.org/fhir/uv/bulkdata/"
                            "OperationDefinition/group-export",
                        }
                    ],
                }
            ],
        }

    @app.get("/fhir/<rtype>")
    def search(rtype: str):
        allowed = sandbox.profile.search.get(rtype)
        if allowed is None:
            return outcome(404, "not-supported", f"{rtype} is not served here")
        refused, patient = guard(rtype, "s")
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
            if in_compartment(r, patient)
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
                    if found and ref not in seen and in_compartment(found[0], patient):
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

    @app.post("/fhir")
    def batch():
        try:
            bundle = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return outcome(400, "invalid", "the body is not JSON")
        kind = bundle.get("type") if isinstance(bundle, dict) else None
        if kind not in ("batch", "transaction"):
            return outcome(400, "invalid", "expected a Bundle of type batch or transaction")
        answers = []
        with app.test_client() as inner:
            headers = {"Authorization": request.headers.get("Authorization", "")}
            for entry in bundle.get("entry") or []:
                req = (entry or {}).get("request") or {}
                method, url = req.get("method", "GET"), req.get("url", "")
                extra = dict(headers)
                for name, header in (("ifNoneExist", "If-None-Exist"), ("ifMatch", "If-Match")):
                    if req.get(name):
                        extra[header] = req[name]
                response = inner.open(
                    f"/fhir/{url.lstrip('/')}",
                    method=method,
                    headers=extra,
                    data=orjson.dumps(entry.get("resource")) if entry.get("resource") else None,
                    content_type=FHIR_JSON,
                )
                if kind == "transaction" and response.status_code >= 400:
                    return outcome(
                        response.status_code,
                        "processing",
                        f"transaction failed at {method} {url.split('?')[0]}: "
                        "nothing was applied after it",
                    )
                body = response.get_json(silent=True)
                answers.append(
                    {
                        "response": {"status": str(response.status_code)},
                        **({"resource": body} if body else {}),
                    }
                )
        return Response(
            orjson.dumps({"resourceType": "Bundle", "type": f"{kind}-response", "entry": answers}),
            mimetype=FHIR_JSON,
        )

    def _readable(rtype: str, rid: str) -> tuple[Response | None, tuple[dict, int] | None]:
        """(None, (resource, version)) when the caller may read it, else (OperationOutcome,
        None): for read, vread and _history alike."""
        if rtype not in sandbox.profile.search and rtype not in sandbox.profile.read_only:
            return outcome(404, "not-supported", f"{rtype} is not served here"), None
        refused, patient = guard(rtype, "r")
        if refused:
            return refused, None
        found = sandbox.store.get(rtype, rid)
        if found is None or not in_compartment(found[0], patient):
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

    def _body(rtype: str) -> tuple[dict | None, Response | None]:
        try:
            resource = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return None, outcome(400, "invalid", "the body is not JSON")
        if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
            return None, outcome(400, "invalid", f"the body is not a {rtype}")
        problem = validate(resource)
        if problem:
            return None, outcome(422, "processing", f"not valid FHIR R4: {problem}")
        return resource, None

    @app.post("/fhir/<rtype>")
    def create(rtype: str):
        if rtype not in sandbox.profile.create:
            return outcome(405, "not-supported", f"creating {rtype} is not allowed here")
        refused, patient = guard(rtype, "c")
        if refused:
            return refused
        resource, error = _body(rtype)
        if error:
            return error
        if not writable(resource, patient):
            return outcome(403, "forbidden", "the token may write only its patient's resources")
        condition = request.headers.get("If-None-Exist")
        if condition:
            if not sandbox.profile.conditional_create:
                return outcome(412, "not-supported", "conditional create is not supported")
            key, _, value = condition.partition("=")
            existing = [r for r in sandbox.store.all(rtype) if matches(r, key, value)]
            if len(existing) > 1:
                return outcome(412, "duplicate", "the condition matches several resources")
            if existing:
                return Response(orjson.dumps(existing[0]), status=200, mimetype=FHIR_JSON)
        resource.pop("id", None)
        body, version, _ = sandbox.store.put(resource)
        response = Response(orjson.dumps(body), status=201, mimetype=FHIR_JSON)
        response.headers["Location"] = f"{fhir}/{rtype}/{body['id']}/_history/{version}"
        response.headers["ETag"] = f'W/"{version}"'
        return response

    @app.put("/fhir/<rtype>/<rid>")
    def update(rtype: str, rid: str):
        if rtype not in sandbox.profile.update:
            return outcome(405, "not-supported", f"updating {rtype} is not allowed here")
        refused, patient = guard(rtype, "u")
        if refused:
            return refused
        resource, error = _body(rtype)
        if error:
            return error
        current = sandbox.store.get(rtype, rid)
        if current is not None and not writable(current[0], patient):
            return outcome(404, "not-found", f"{rtype}/{rid} is not known")  # as a read says
        if not writable(resource, patient):
            return outcome(403, "forbidden", "the token may write only its patient's resources")
        match = request.headers.get("If-Match")
        version = None
        if match:
            try:
                version = int(match.removeprefix("W/").strip('"'))
            except ValueError:
                return outcome(400, "invalid", 'If-Match must look like W/"3"')
        try:
            body, new_version, _ = sandbox.store.put(dict(resource, id=rid), if_match=version)
        except Conflict as exc:
            return outcome(412, "conflict", str(exc))
        response = Response(orjson.dumps(body), mimetype=FHIR_JSON)
        response.headers["ETag"] = f'W/"{new_version}"'
        return response

    @app.get("/")
    def chart():
        patients = sandbox.store.all("Patient")
        encounters = sandbox.store.all("Encounter")
        rows = []
        for patient in patients:
            visits = [
                e
                for e in encounters
                if (e.get("subject") or {}).get("reference") == f"Patient/{patient['id']}"
            ]
            rows.append(
                (
                    patient,
                    sorted(
                        visits, key=lambda e: (e.get("period") or {}).get("start", ""), reverse=True
                    ),
                )
            )
        return render_template_string(
            CHART, rows=rows, profile=sandbox.profile.name, coder=CODER_USER
        )

    @app.get("/chart/launch/<encounter_id>")
    def chart_launch(encounter_id: str):
        found = sandbox.store.get("Encounter", encounter_id)
        if found is None:
            abort(404)
        patient = (found[0].get("subject") or {}).get("reference", "").split("/")[-1]
        launch = sandbox.grants.new_launch(patient, encounter_id)
        src = f"{sandbox.app_launch_url}?{urlencode({'iss': fhir, 'launch': launch})}"
        return render_template_string(FRAME, src=src, encounter=encounter_id)

    @app.get("/chart/coder-launch")
    def coder_launch():
        """The EHR menu's "Coding work queue": a launch without patient context, as a coder."""
        launch = sandbox.grants.new_launch(None, None, user=request.args.get("user", CODER_USER))
        src = f"{sandbox.app_launch_url}?{urlencode({'iss': fhir, 'launch': launch})}"
        return render_template_string(FRAME, src=src, encounter="coding work queue")

    install_bulk(app, sandbox, fhir, outcome, lambda: sandbox.grants.grant_for(bearer()))
    install_cors(app)
    return app


CHART = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sandbox EHR</title>
<style>body{font:14px system-ui;margin:1rem}td,th{padding:.2rem .6rem;text-align:left}
.warn{background:#fff3cd;padding:.4rem}</style></head><body>
<p class="warn">Sandbox EHR ({{ profile }} profile): synthetic data only, never patient data.</p>
<p><a class="coder-launch" id="coder-launch" href="/chart/coder-launch">Coding work queue</a>
(the EHR menu's launch as the coder {{ coder }}, no patient)</p>
<h1>Patient chart</h1><table><tr><th>Patient</th><th>Visit</th><th>Date</th><th></th></tr>
{% for patient, visits in rows %}{% for e in visits %}<tr>
<td>{{ patient.id }}</td><td>{{ e.id }}</td><td>{{ (e.period or {}).start }}</td>
<td><a class="launch" data-encounter="{{ e.id }}" href="/chart/launch/{{ e.id }}">unitguard</a>
</td></tr>{% endfor %}{% endfor %}</table></body></html>"""

SIGN_IN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title>
<style>body{font:14px system-ui;margin:1rem}.warn{background:#fff3cd;padding:.4rem}</style></head>
<body><p class="warn">Sandbox EHR: synthetic data only, never patient data.</p>
<h1>Sign in to the sandbox EHR as</h1><form method="post" action="/oauth/authorize">
{% for name, value in args.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}<ul>{% for ref, label in users %}<li><button type="submit" name="sandbox_user"
data-user="{{ ref }}" value="{{ ref }}">{{ label }}</button></li>{% endfor %}</ul>
</form></body></html>"""

PICKER = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Choose a
patient</title><style>body{font:14px system-ui;margin:1rem}.warn{background:#fff3cd;padding:.4rem}
</style></head><body><p class="warn">Sandbox EHR: synthetic data only, never patient data.</p>
<h1>Choose a patient</h1><form method="post" action="/oauth/authorize">
{% for name, value in args.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}<ul>{% for id, label in patients %}<li><button type="submit" name="sandbox_patient"
data-patient="{{ id }}" value="{{ id }}">{{ label }}</button></li>{% endfor %}</ul>
</form></body></html>"""


def patient_name(patient: dict) -> str:
    """How the picker shows a (synthetic) patient: the first name given, else the id."""
    for name in patient.get("name") or []:
        if isinstance(name, dict):
            text = name.get("text") or " ".join(
                [*(name.get("given") or []), name.get("family") or ""]
            )
            if text.strip():
                return f"{text.strip()} ({patient['id']})"
    return str(patient["id"])


FRAME = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Chart: visit
{{ encounter }}</title><style>body{margin:0;font:14px system-ui}header{padding:.4rem;
background:#234;color:#fff}iframe{border:0;width:100%;height:calc(100vh - 2.2rem)}</style>
</head><body><header>Sandbox EHR: visit {{ encounter }} (synthetic data)</header>
<iframe id="app" title="unitguard" src="{{ src }}"></iframe></body></html>"""


def client_for_app(grants: Grants, client_id: str, redirect_uri: str) -> None:
    grants.register(Client(client_id, (redirect_uri,)))
