"""The sandbox serves note text as Binary (GET /fhir/Binary/ID), as Epic and Oracle Health do,
and the fetch reads it over real HTTP."""

from __future__ import annotations

import base64
import time

import pytest

from plugin.ehr import FetchStats, fetch_visit
from plugin.review import review_bundle
from sandbox.app import create_app
from sandbox.auth import Grant
from sandbox.seed import build_sandbox
from smart_launch import FhirClient, make_session
from tests.loopback import running_sandbox

FHIR_JSON = "application/fhir+json"
PHRASE = "Perturbation on foam with tactile cues for hip strategy"


def note_and_binary(patient: str, encounter: str, url: str, rid: str = "note-x") -> list[dict]:
    return [
        {
            "resourceType": "DocumentReference",
            "id": f"doc-{rid}",
            "status": "current",
            "docStatus": "final",
            "subject": {"reference": f"Patient/{patient}"},
            "context": {"encounter": [{"reference": f"Encounter/{encounter}"}]},
            "content": [{"attachment": {"contentType": "text/html", "url": url}}],
        },
        {
            "resourceType": "Binary",
            "id": rid,
            "contentType": "text/html",
            "securityContext": {"reference": f"DocumentReference/doc-{rid}"},
            "data": base64.b64encode(f"<p>{PHRASE}</p>".encode()).decode(),
        },
    ]


@pytest.fixture
def sandbox():
    sb = build_sandbox("epic", data_dir=None)
    for resource in note_and_binary("pat-1", "enc-1", "Binary/note-x"):
        sb.store.put(resource)
    for resource in note_and_binary("pat-2", "enc-2", "Binary/note-y", rid="note-y"):
        sb.store.put(resource)
    return sb


def client_with(sb, scopes: set[str], patient: str | None = "pat-1"):
    sb.grants.tokens["tok"] = Grant(
        "c1", frozenset(scopes), patient=patient, expires=time.time() + 60
    )
    return create_app(sb, "http://sandbox.test").test_client()


def get(client, path: str):
    return client.get(path, headers={"Accept": FHIR_JSON, "Authorization": "Bearer tok"})


def test_binary_read_returns_the_fhir_resource(sandbox):
    client = client_with(sandbox, {"patient/Binary.r"})
    response = get(client, "/fhir/Binary/note-x")
    assert response.status_code == 200 and response.mimetype == FHIR_JSON
    body = response.get_json()
    assert body["resourceType"] == "Binary" and body["contentType"] == "text/html"
    assert PHRASE in base64.b64decode(body["data"]).decode()


def test_binary_is_read_only_and_listed_so(sandbox):
    client = client_with(sandbox, {"patient/Binary.rs"})
    # read only (Epic declares a Binary search by _id; the sandbox serves one only by its id)
    assert get(client, "/fhir/Binary").status_code == 404
    statement = get(client, "/fhir/metadata").get_json()
    listed = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert listed["Binary"]["interaction"] == [{"code": "read"}, {"code": "vread"}]


def test_binary_of_another_patient_or_without_scope_is_refused(sandbox):
    client = client_with(sandbox, {"patient/Binary.r"})
    assert get(client, "/fhir/Binary/note-y").status_code == 404  # pat-2's note
    client = client_with(sandbox, {"patient/DocumentReference.rs"})
    assert get(client, "/fhir/Binary/note-x").status_code == 403


def test_fetch_over_http_reads_the_binary_note():
    patient, encounter = "units-exceed-pat-1", "units-exceed-enc-1"
    with running_sandbox("epic", open_access=True) as ehr:
        for resource in note_and_binary(patient, encounter, f"{ehr.fhir}/Binary/note-x"):
            ehr.sandbox.store.put(resource)
        stats = FetchStats()
        client = FhirClient(ehr.fhir, session=make_session(retries=0))
        fetched = fetch_visit(client, encounter, stats=stats)
    assert stats.rounds <= 6
    assert any(e["resource"]["resourceType"] == "Binary" for e in fetched["entry"])
    report = review_bundle(fetched, encounter_id=encounter)
    assert PHRASE in report.visit.note_text
    assert not [n for n in report.visit.notes if "Binary" in n]
