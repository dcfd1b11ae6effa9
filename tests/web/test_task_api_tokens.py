"""Task API tokens bound to an EHR and to the fields they may change (second security review,
MEDIUM: a PUT moved a Task to another EHR, patient, owner or status, and left no history)."""

from __future__ import annotations

import json

import pytest

from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder
from plugin.tasks.build import review_task
from plugin.tasks.history import task_history
from plugin.web import create_app
from plugin.web.api_tokens import parse_tokens
from plugin.web.settings import Settings, SettingsError
from plugin.web.visits import StaticVisitSource

EHR_A = "https://ehr-a.test/fhir"
EHR_B = "https://ehr-b.test/fhir"
STATUS_ONLY = "status-only-token-0123456789"
CODER_TOOL = "coder-tool-token-0123456789"
OTHER_EHR = "other-ehr-token-0123456789"
TOKENS = (
    f"billing|{STATUS_ONLY}|{EHR_A}|status "
    f"coding|{CODER_TOOL}|{EHR_A}|status,owner,note,priority "
    f"elsewhere|{OTHER_EHR}|{EHR_B}|status,owner,note"
)


def _task(issuer: str) -> dict:
    """The review Task of one defective visit (its identifier is made of issuer and visit)."""
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 3)
    report = review_bundle(b.bundle())
    return review_task(report, issuer=issuer, owner={"reference": "Organization/coding-team"})


@pytest.fixture
def app(tmp_path):
    settings = Settings(
        testing=True,
        public_url="http://app.test",
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
        task_api_tokens=parse_tokens(TOKENS),
    ).validated()
    return create_app(settings, visits=StaticVisitSource({}))


@pytest.fixture
def tasks(app):
    """One Task of EHR A and one of EHR B, as stored (version 1)."""
    store = app.extensions["unitguard"].store
    return {
        "a": store.create(_task(EHR_A))[0].task,
        "b": store.create(_task(EHR_B))[0].task,
    }


def _auth(token: str, version: int | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["If-Match"] = f'W/"{version}"'
    return headers


def _put(app, task: dict, token: str, version: int = 1):
    return app.test_client().put(
        f"/fhir/Task/{task['id']}",
        data=json.dumps(task),
        headers=_auth(token, version),
        content_type="application/fhir+json",
    )


def _stored(app, task: dict):
    return app.extensions["unitguard"].store.read(task["id"])


def test_a_token_sees_and_changes_only_its_ehrs_tasks(app, tasks):
    client = app.test_client()
    found = client.get("/fhir/Task", headers=_auth(CODER_TOOL)).get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == [tasks["a"]["id"]]
    assert (
        client.get(f"/fhir/Task/{tasks['b']['id']}", headers=_auth(CODER_TOOL)).status_code == 404
    )
    assert client.get(f"/fhir/Task/{tasks['b']['id']}", headers=_auth(OTHER_EHR)).status_code == 200
    resp = _put(app, dict(tasks["b"], status="completed"), CODER_TOOL)
    assert resp.status_code == 404
    assert _stored(app, tasks["b"]).version == 1


def _moved_to_another_ehr(task: dict) -> dict:
    inputs = [dict(i, valueUri=EHR_B) if i.get("valueUri") == EHR_A else i for i in task["input"]]
    return dict(task, input=inputs)


@pytest.mark.parametrize(
    "move",
    [
        pytest.param(_moved_to_another_ehr, id="another EHR"),
        pytest.param(lambda t: dict(t, **{"for": {"reference": "Patient/other"}}), id="patient"),
        pytest.param(lambda t: dict(t, encounter={"reference": "Encounter/other"}), id="visit"),
        pytest.param(lambda t: dict(t, focus={"reference": "Claim/other"}), id="focus"),
        pytest.param(lambda t: dict(t, input=t["input"][1:]), id="a finding dropped"),
        pytest.param(lambda t: dict(t, description="all fine"), id="description"),
        pytest.param(lambda t: dict(t, intent="plan"), id="intent"),
        pytest.param(lambda t: dict(t, requester={"reference": "Practitioner/x"}), id="requester"),
        pytest.param(lambda t: {k: v for k, v in t.items() if k != "for"}, id="patient removed"),
    ],
)
def test_a_put_that_changes_what_ties_the_task_is_refused(app, tasks, move):
    resp = _put(app, move(tasks["a"]), CODER_TOOL)
    assert resp.status_code == 403 and resp.get_json()["resourceType"] == "OperationOutcome"
    assert _stored(app, tasks["a"]).task == tasks["a"]


def test_a_token_changes_only_the_fields_it_was_given(app, tasks):
    owned = dict(tasks["a"], owner={"reference": "Practitioner/coder-1"})
    refused = _put(app, owned, STATUS_ONLY)
    assert refused.status_code == 403
    assert "may change only status, not owner" in refused.get_json()["issue"][0]["diagnostics"]
    assert _stored(app, tasks["a"]).version == 1
    assert _put(app, dict(tasks["a"], status="in-progress"), STATUS_ONLY).status_code == 200


def test_every_change_writes_history(app, tasks):
    changed = dict(tasks["a"], status="completed", owner={"reference": "Practitioner/coder-1"})
    resp = _put(app, changed, CODER_TOOL)
    assert resp.status_code == 200 and resp.headers["ETag"] == 'W/"2"'
    (line,) = task_history(_stored(app, tasks["a"]).task)
    assert line["action"] == "api-change" and line["who"] == "Task API (coding)"
    assert line["what"] == "Changed through the Task API: owner, status"


def test_notes_can_be_added_never_rewritten(app, tasks):
    added = dict(tasks["a"], note=[{"text": "Checked with the therapist"}])
    assert _put(app, added, CODER_TOOL).status_code == 200
    now = _stored(app, tasks["a"]).task
    assert [h["note"] or h["what"] for h in task_history(now)] == [
        "Checked with the therapist",
        "Changed through the Task API: note",
    ]
    for rewritten in ([], [{"text": "Something else"}, *now["note"][1:]], now["note"][:1]):
        resp = _put(app, dict(now, note=rewritten), CODER_TOOL, version=2)
        assert resp.status_code == 403
        assert _stored(app, tasks["a"]).task == now


def test_a_put_that_changes_nothing_keeps_the_version(app, tasks):
    resp = _put(app, tasks["a"], CODER_TOOL)
    assert resp.status_code == 200 and resp.headers["ETag"] == 'W/"1"'
    assert _stored(app, tasks["a"]).task == tasks["a"]


def test_a_stale_put_is_412_whatever_it_changes(app, tasks):
    assert _put(app, dict(tasks["a"], status="in-progress"), CODER_TOOL).status_code == 200
    assert _put(app, dict(tasks["a"], status="completed"), CODER_TOOL).status_code == 412


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("a-bare-old-style-token-0123456789,another-old-token-0123456789", "old format"),
        ("billing|short|https://ehr.test/fhir|status", "at least 20 characters"),
        ("billing|a-token-of-twenty-chars|https://ehr.test/fhir|identifier", "identifier cannot"),
        ("billing|a-token-of-twenty-chars|ehr.test|status", "an http(s) issuer"),
        ("billing|a-token-of-twenty-chars|https://ehr.test/fhir", "NAME|TOKEN|ISSUER|FIELDS"),
        (
            "a|a-token-of-twenty-chars|https://a.test|status "
            "b|a-token-of-twenty-chars|https://b.test|status",
            "one token to two entries",
        ),
    ],
)
def test_a_token_not_bound_to_an_ehr_is_refused_at_start(monkeypatch, value, says):
    monkeypatch.setenv("UNITGUARD_TASK_API_TOKENS", value)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(testing=True)
    message = str(refused.value)
    assert says in message and "\n" not in message
    assert "a-token-of-twenty-chars" not in message and "old-style-token" not in message
    if says == "old format":
        assert "NAME|TOKEN|ISSUER|FIELDS" in message


def test_the_new_format_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("UNITGUARD_TASK_API_TOKENS", TOKENS.replace(" ", "\n"))
    tokens = Settings.from_env(testing=True).task_api_tokens
    assert [(t.name, t.issuer, sorted(t.fields)) for t in tokens] == [
        ("billing", EHR_A, ["status"]),
        ("coding", EHR_A, ["note", "owner", "priority", "status"]),
        ("elsewhere", EHR_B, ["note", "owner", "status"]),
    ]
    assert STATUS_ONLY not in repr(tokens)


def test_a_settings_object_with_bare_tokens_is_refused():
    with pytest.raises(SettingsError):
        Settings(testing=True, task_api_tokens=("a-bare-token-0123456789",)).validated()
