"""The review page, sign-off write-back, the coder queue and the Task API, through Flask."""

from __future__ import annotations

import re

import pytest

from plugin.synthetic.visit import clean_visit
from plugin.web import create_app
from plugin.web.api_tokens import parse_tokens
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from plugin.web.visits import StaticVisitSource
from tests.web.conftest import bound_session, defective

ISS = "http://ehr.test/fhir"
API_TOKEN = "test-api-token-0123456789"


@pytest.fixture
def app(tmp_path):
    settings = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db=f"sqlite:///{tmp_path}/o.sqlite",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
        task_api_tokens=parse_tokens(f"tests|{API_TOKEN}|{ISS}|status"),
        frame_ancestors=("http://ehr.test:8090",),
    ).validated()
    return create_app(settings, visits=StaticVisitSource({"enc-1": defective()}))


@pytest.fixture
def launch(app):
    session = LaunchSession(
        iss=ISS,
        patient="Patient/pat-1",
        encounter="Encounter/enc-1",
        fhir_user="Practitioner/pt",
        token={"access_token": "secret-tok"},
    )
    sid = bound_session(app, session)
    return sid, session.csrf


def test_review_page_shows_findings_with_data_attributes(app, launch):
    sid, _ = launch
    page = app.test_client().get(f"/review/enc-1?sid={sid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-rule="units-exceed-time"' in html and 'data-rule="doc-unsigned"' in html
    assert re.search(r'data-code="97112" data-billed-units="3"\s+data-supported-units="2"', html)
    assert "secret-tok" not in html  # the token never reaches the page
    # worst first: the first finding on the page is an error
    first = re.search(r'data-severity="(\w+)"', html).group(1)
    assert first == "error"


def test_review_needs_a_launch_and_only_the_launched_visit(app, launch):
    client = app.test_client()
    assert client.get("/review/enc-1").status_code == 401
    sid, _ = launch
    assert client.get(f"/review/enc-2?sid={sid}").status_code == 403


def test_sign_off_with_errors_needs_the_confirmation_on_the_server_too(app, launch):
    """The page's checkbox is 'required' in the browser; a POST without it signs nothing."""
    sid, csrf = launch
    resp = app.test_client().post("/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf})
    assert resp.status_code == 400 and "tick" in resp.get_data(as_text=True)
    assert app.extensions["unitguard"].store.search()[1] == 0


def test_sign_off_writes_one_task_and_updates_it_on_resign(app, launch):
    sid, csrf = launch
    client = app.test_client()
    resp = client.post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    )
    assert resp.status_code == 302 and "status=created" in resp.headers["Location"]
    assert "Task created" in client.get(resp.headers["Location"]).text
    resp = client.post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    )
    assert "status=updated" in resp.headers["Location"]
    store = app.extensions["unitguard"].store
    page, total = store.search()
    assert total == 1 and page[0].version == 2
    assert page[0].task["for"] == {"reference": "Patient/pat-1"}


def test_sign_off_refuses_a_missing_or_wrong_csrf_token(app, launch):
    sid, _ = launch
    client = app.test_client()
    assert client.post("/review/enc-1/sign-off", data={"sid": sid}).status_code == 400
    assert (
        client.post("/review/enc-1/sign-off", data={"sid": sid, "csrf_token": "forged"}).status_code
        == 400
    )
    assert app.extensions["unitguard"].store.search()[1] == 0


def test_clean_visit_writes_no_task_unless_configured(tmp_path):
    settings = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t2.sqlite",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
    )
    app = create_app(
        settings.validated(), visits=StaticVisitSource({"enc-1": clean_visit().bundle()})
    )
    session = LaunchSession(iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1")
    sid = bound_session(app, session)
    resp = app.test_client().post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": session.csrf}
    )
    assert "status=clean" in resp.headers["Location"]
    assert app.extensions["unitguard"].store.search()[1] == 0


def coder_session(app, iss: str = ISS, user: str = "Practitioner/coder-1") -> tuple[str, str]:
    session = LaunchSession(iss=iss, fhir_user=user, role="coder", user_name="Casey Coder")
    return bound_session(app, session), session.csrf


def _signed_task(app, launch):
    """The therapist signs off; returns a coder of the same EHR with the Task."""
    sid, csrf = launch
    client = app.test_client()
    client.post("/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"})
    stored = app.extensions["unitguard"].store.search()[0][0]
    sid, csrf = coder_session(app)
    return client, sid, csrf, stored


def test_queue_lists_filters_and_completes(app, launch):
    client, sid, csrf, stored = _signed_task(app, launch)
    html = client.get(f"/queue?sid={sid}").get_data(as_text=True)
    assert f'data-task="Task/{stored.task["id"]}"' in html
    assert 'data-rule="units-exceed-time"' in html
    assert stored.task["id"] not in client.get(f"/queue?sid={sid}&rule=cloned-note").get_data(
        as_text=True
    )
    resp = client.post(
        f"/queue/{stored.task['id']}/action",
        data={
            "sid": sid,
            "csrf_token": csrf,
            "version": stored.version,
            "action": "complete-corrected",
            "reason": "billed 2 units, as the minutes support",
            "units-97112": "2",
        },
    )
    assert resp.status_code == 302
    task = app.extensions["unitguard"].store.read(stored.task["id"]).task
    assert task["status"] == "completed" and task["businessStatus"]["text"] == "corrected"
    assert task["output"][0]["type"]["text"] == "97112" and task["output"][0]["valueInteger"] == 2
    assert stored.task["id"] not in client.get(f"/queue?sid={sid}").get_data(as_text=True)


def test_queue_reject_needs_a_reason_and_reassign_sets_owner(app, launch):
    client, sid, csrf, stored = _signed_task(app, launch)
    base = {"sid": sid, "csrf_token": csrf, "version": stored.version}
    assert (
        client.post(
            f"/queue/{stored.task['id']}/action", data={**base, "action": "reject"}
        ).status_code
        == 400
    )
    made_up = client.post(
        f"/queue/{stored.task['id']}/action",
        data={**base, "action": "reassign", "owner": "Senior coder", "reason": "kept"},
    )
    assert made_up.status_code == 400  # not one of the EHR's coders: the form is kept
    assert "is not one of this EHR" in made_up.get_data(as_text=True)
    assert ">kept</textarea>" in made_up.get_data(as_text=True)
    client.post(
        f"/queue/{stored.task['id']}/action",
        data={**base, "action": "reassign", "owner": "me"},
    )
    task = app.extensions["unitguard"].store.read(stored.task["id"]).task
    assert task["owner"] == {"reference": "Practitioner/coder-1", "display": "Casey Coder"}
    assert task["note"][-1]["authorReference"] == {
        "reference": "Practitioner/coder-1",
        "display": "Casey Coder",
    }


def test_stale_version_is_a_412_and_nothing_is_overwritten(app, launch):
    client, sid, csrf, stored = _signed_task(app, launch)
    base = {"sid": sid, "csrf_token": csrf, "version": stored.version}
    client.post(f"/queue/{stored.task['id']}/action", data={**base, "action": "complete-no-change"})
    resp = client.post(
        f"/queue/{stored.task['id']}/action",
        data={**base, "action": "reject", "reason": "duplicate"},
    )
    assert resp.status_code == 412
    page = resp.get_data(as_text=True)
    assert "Someone else changed this review" in page and 'data-conflict="true"' in page
    assert ">duplicate</textarea>" in page  # what the coder typed is kept
    assert app.extensions["unitguard"].store.read(stored.task["id"]).task["status"] == "completed"


def test_security_headers_on_every_page(app, launch):
    sid, _ = launch
    client = app.test_client()
    for path in (f"/review/enc-1?sid={sid}", f"/queue?sid={sid}", "/healthz", "/nope"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors http://ehr.test:8090" in csp and "script-src 'self'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_task_api_requires_a_token_and_serves_fhir(app, launch):
    client, sid, csrf, stored = _signed_task(app, launch)
    assert client.get("/fhir/Task").status_code == 401
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    bundle = client.get(
        "/fhir/Task?status=requested&code=coding-review&_sort=-_lastUpdated", headers=auth
    ).get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 1
    task_id = bundle["entry"][0]["resource"]["id"]
    read = client.get(f"/fhir/Task/{task_id}", headers=auth)
    assert read.headers["ETag"] == 'W/"1"'
    body = dict(read.get_json(), status="in-progress")
    ok = client.put(f"/fhir/Task/{task_id}", json=body, headers={**auth, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == 'W/"2"'
    stale = client.put(f"/fhir/Task/{task_id}", json=body, headers={**auth, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Task/unknown", headers=auth).status_code == 404


def test_logs_hold_no_token_session_id_or_patient_reference(app, launch, caplog):
    sid, csrf = launch
    client = app.test_client()
    with caplog.at_level("DEBUG"):
        client.get(f"/review/enc-1?sid={sid}")
        client.post(
            "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
        )
        client.get(f"/queue?sid={sid}")
        client.get(f"/review/enc-2?sid={sid}")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sign-off: verdict=unsupported" in logged  # the test can see what is logged
    for secret in ("secret-tok", sid, csrf, "Patient/pat-1", "pat-1"):
        assert secret not in logged


def test_session_repr_hides_the_token():
    session = LaunchSession(iss=ISS, token={"access_token": "secret-tok"})
    assert "secret-tok" not in repr(session)


def test_in_memory_session_store_survives_concurrent_users():
    """Regression: threads shared one in-memory SQLite connection and lost sessions."""
    from concurrent.futures import ThreadPoolExecutor

    from plugin.web.sessions import SessionStore

    store = SessionStore("sqlite://")

    def one(n: int) -> bool:
        sid = store.create(LaunchSession(iss=ISS, patient=f"Patient/p{n}"))
        return all(store.get(sid).patient == f"Patient/p{n}" for _ in range(5))

    with ThreadPoolExecutor(20) as pool:
        assert all(pool.map(one, range(200)))


@pytest.mark.parametrize(
    "hostile",
    [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "..%2F..",
    ],
)
def test_no_redirect_leaves_the_app(app, hostile):
    """Every redirect the app makes is built from its own routes: an encounter id from the
    launch context, or a status or message parameter, can never send the browser elsewhere."""
    from flask import url_for

    with app.test_request_context():
        target = url_for("views.review_page", encounter_id=hostile, sid="s", status=hostile)
        task = url_for("views.task_page", task_id=hostile, sid="s", message=hostile)
    from urllib.parse import urlsplit

    for location in (target, task):
        parts = urlsplit(location)
        assert not parts.scheme and not parts.netloc, location  # relative: same origin
        assert location.startswith(("/review/", "/queue/")) and location[1] not in "/\\"


def test_sign_off_and_queue_redirects_stay_on_the_app(app, launch):
    sid, csrf = launch
    client = app.test_client()
    signed = client.post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    )
    assert signed.status_code == 302
    assert signed.headers["Location"].startswith("/review/enc-1?")
