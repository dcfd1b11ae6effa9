"""The SMART authorization server over HTTP: OpenID and SMART discovery, the JWKS, authorize
(with its sign-in and patient-picker pages) and token. The grants themselves: sandbox/auth.py."""

from __future__ import annotations

import orjson
from flask import Flask, Response, redirect, render_template_string, request

from sandbox.state import Sandbox
from sandbox.store import references


def install_smart(app: Flask, sandbox: Sandbox, fhir: str, base_url: str) -> None:
    """Add the discovery, JWKS, authorize and token endpoints to the sandbox app."""

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
        # RFC 7009 revocation at the full profile, the generic SMART server; the epic and
        # oracle profiles name none, as their published configurations seen here do not.
        revocation = (
            {"revocation_endpoint": f"{base_url}/oauth/revoke"}
            if sandbox.profile.name == "full"
            else {}
        )
        return {
            **revocation,
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

    def client_post(handle, url: str) -> Response:
        """A client's POST to an OAuth endpoint (its credentials in Basic auth or the form),
        answered as JSON that no cache keeps."""
        auth = request.authorization
        basic = (auth.username, auth.password) if auth and auth.type == "basic" else None
        status, body = handle(request.form.to_dict(), basic, url)
        response = Response(orjson.dumps(body), status=status, mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/oauth/revoke")
    def revoke():
        return client_post(sandbox.grants.revoke, f"{base_url}/oauth/revoke")

    @app.post("/oauth/token")
    def token():
        return client_post(sandbox.grants.token, f"{base_url}/oauth/token")


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
