"""The sandbox's CapabilityStatement at /fhir/metadata, shaped like the vendors' published ones."""

from __future__ import annotations

import orjson
from flask import Flask, Response

from sandbox.outcome import FHIR_JSON
from sandbox.profiles import CONTROL, PARAM_TYPES
from sandbox.state import Sandbox

SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def install_capability(app: Flask, sandbox: Sandbox, fhir: str, base_url: str) -> None:
    """Add GET /fhir/metadata to the sandbox app."""

    @app.get("/fhir/metadata")
    def metadata():
        return Response(orjson.dumps(capability_statement()), mimetype=FHIR_JSON)

    def _param(rtype: str, name: str) -> dict:
        """A searchParam as the vendor declares it (its type, and its documentation where it
        lists values: the fetch reads Epic's Observation categories from it), else ours."""
        statement = sandbox.profile.declared
        declared = statement.params(rtype).get(name, {}) if statement else {}
        param = {"name": name, "type": declared.get("type") or PARAM_TYPES[name]}
        if declared.get("documentation"):
            param["documentation"] = declared["documentation"]
        return param

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
                    "searchParam": [_param(rtype, p) for p in sorted(params - CONTROL)],
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
