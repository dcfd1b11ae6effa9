"""Scenario-prefixed ids, so many synthetic visits load side by side into one FHIR server."""

from __future__ import annotations

import json

SHARED = {"Practitioner"}  # the clinic's therapists appear in every fixture under one id


def slug(name: str) -> str:
    return name.replace("_", "-")


def unique_ids(bundle: dict, prefix: str) -> dict:
    """Prefix every resource id (and every reference to it) with the scenario, so all fixtures
    can be loaded into one FHIR server (the sandbox EHR) side by side."""
    renames = {}
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("id") and res["resourceType"] not in SHARED:
            renames[f"{res['resourceType']}/{res['id']}"] = (
                f"{res['resourceType']}/{prefix}-{res['id']}"
            )
    text = json.dumps(bundle)
    for old, new in sorted(renames.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f'"{old}"', f'"{new}"').replace(f'/{old}"', f'/{new}"')
    bundle = json.loads(text)
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("id") and res["resourceType"] not in SHARED:
            res["id"] = f"{prefix}-{res['id']}"
    return bundle
