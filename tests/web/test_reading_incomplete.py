"""What could not be read is said plainly on the therapist's page, in the coding-review Task and
on the CDS card, and never as a missing-documentation finding (contract §2, §3)."""

from __future__ import annotations

import json
import uuid

import pytest

from plugin.tasks.build import task_input, task_rules
from plugin.web import create_app
from plugin.web.cds_hooks import SERVICES
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from plugin.web.visits import StaticVisitSource
from tests.rules.cases import observations_refused
from tests.web.conftest import bound_session
from tests.web.test_cds_hooks import SERVICE, client, token  # noqa: F401 (the CDS app fixture)

ISS = "http://ehr.test/fhir"
SAID = "Observations could not be read from Epic: objective measures not checked"


@pytest.fixture
def app(tmp_path):
    settings = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db=f"sqlite:///{tmp_path}/o.sqlite",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
    ).validated()
    return create_app(settings, visits=StaticVisitSource({"enc-1": observations_refused()[0]}))


@pytest.fixture
def launch(app):
    session = LaunchSession(
        iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1", fhir_user="Practitioner/pt"
    )
    return bound_session(app, session), session.csrf


def test_the_review_page_says_what_was_not_read(app, launch):
    sid, _ = launch
    html = app.test_client().get(f"/review/enc-1?sid={sid}").get_data(as_text=True)
    assert 'data-rule="reading-incomplete"' in html and SAID in html
    assert 'data-rule="doc-no-objective-measure"' not in html
    # the checklist does not tick, nor cross, what it could not read
    item = next(li for li in html.split("<li ") if "Objective measure recorded" in li)
    assert 'data-unread="true"' in item and 'data-ok="false"' in item
    assert "not read from the chart" in item


def test_the_coding_review_task_carries_it(app, launch):
    sid, csrf = launch
    app.test_client().post("/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf})
    task = app.extensions["unitguard"].store.search()[0][0].task
    assert task_rules(task) == ["reading-incomplete"]
    said = [i["valueString"] for i in task["input"] if "valueString" in i]
    assert any(s.startswith(SAID) for s in said)
    snapshot = task_input(task, "review")
    assert snapshot  # the review JSON rides along, with what was not read as data


def _prefetch(observations: object) -> dict:
    """The visit as an EHR prefetches it along our templates (each key answered, an empty
    searchset where it holds nothing), Observations as given."""
    bundle = observations_refused()[0]
    templates = SERVICES[SERVICE]["prefetch"]
    by_key: dict[str, list[dict]] = {k: [] for k, t in templates.items() if "?" in t}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        rtype = resource["resourceType"]
        if rtype == "OperationOutcome":
            continue  # the EHR says it through the prefetch itself
        key = next((k for k, t in templates.items() if t.startswith(f"{rtype}?")), "extra")
        by_key.setdefault(key, []).append(resource)
    prefetch: dict[str, object] = {
        key: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in rs]}
        for key, rs in by_key.items()
    }
    prefetch["encounter"] = next(r for r in by_key["encounters"] if r["id"] == "enc-1")
    prefetch["observations"] = observations
    return prefetch


def _cards(client, prefetch: dict) -> dict[str, dict]:  # noqa: F811
    body = {
        "hook": "encounter-discharge",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": ISS,
        "context": {"patientId": "pat-1", "encounterId": "enc-1", "userId": "Practitioner/pt"},
        "prefetch": prefetch,
    }
    resp = client.post(
        f"/cds-services/{SERVICE}", json=body, headers={"Authorization": f"Bearer {token()}"}
    )
    assert resp.status_code == 200
    return {c["summary"].split(":")[0]: c for c in resp.get_json()["cards"]}


def test_the_cds_card_says_a_failed_prefetch_was_not_read(client):  # noqa: F811
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": "timed out"}],
    }
    cards = _cards(client, _prefetch(failed))
    assert "doc-no-objective-measure" not in cards
    card = cards["reading-incomplete"]
    assert card["indicator"] == "warning"
    assert "Observations could not be read: objective measures not checked" in card["detail"]
    assert json.loads(card["links"][0]["appContext"]) == {"encounter": "Encounter/enc-1"}
    # a key left out while the others were answered is not read either
    left_out = _prefetch(None)
    del left_out["observations"]
    assert "reading-incomplete" in _cards(client, left_out)


def test_an_empty_prefetch_is_read_and_the_measure_is_missing(client):  # noqa: F811
    # Guard: an answered prefetch with no Observation in it is no measure, not an unread one.
    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    cards = _cards(client, _prefetch(empty))
    assert "doc-no-objective-measure" in cards and "reading-incomplete" not in cards
