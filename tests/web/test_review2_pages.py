"""Pages show only words the app chose, and the queue export guards cells as the audit does
(second security review, LOW; the changes in plugin/web/views.py)."""

from __future__ import annotations

import csv
import io

import pytest

from plugin.csv_safety import safe_cell
from plugin.tasks.build import INPUT_SYSTEM
from plugin.web.sessions import LaunchSession
from tests.tasks.test_tasks import defective_task
from tests.web import test_rate_limit
from tests.web.conftest import bound_session
from tests.web.test_rate_limit import ISS

make_app = test_rate_limit.make_app  # the fixture: an app with a registered EHR
HOSTILE = "Your account is locked. Call 555-0100 to restore access"


def coder_session(app) -> str:
    session = LaunchSession(iss=ISS, fhir_user="Practitioner/coder-1", role="coder")
    return bound_session(app, session)


def stored_task(app, patient_name: str = "Alex Moreau") -> dict:
    """A review Task of the app's EHR, with ``patient_name`` as its patient's name."""
    task = defective_task()
    for item in task["input"]:
        if item["type"]["coding"][0]["code"] == "ehr":
            item["valueUri"] = ISS
    name = {"type": {"coding": [{"system": INPUT_SYSTEM, "code": "patient-name"}]}}
    task["input"].append({**name, "valueString": patient_name})
    return app.extensions["unitguard"].store.create(task)[0].task


def test_the_review_page_shows_only_notices_the_app_chose(make_app):
    app = make_app()
    session = LaunchSession(iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1")
    sid = bound_session(app, session)
    client = app.test_client()
    page = client.get("/review/enc-1", query_string={"sid": sid, "status": HOSTILE}).text
    assert "Call 555" not in page  # shown in the app's voice before
    assert "Task created" in client.get(f"/review/enc-1?sid={sid}&status=created").text


def test_the_task_page_shows_only_notices_the_app_chose(make_app):
    app = make_app()
    task = stored_task(app)
    sid = coder_session(app)
    client = app.test_client()
    path = f"/queue/{task['id']}"
    page = client.get(path, query_string={"sid": sid, "message": HOSTILE}).text
    assert "Call 555" not in page
    assert "Saved: Started" in client.get(path, query_string={"sid": sid, "message": "start"}).text


@pytest.mark.parametrize(
    "cell", [" =1+1", "\n=cmd|' /C calc'!A0", "  @SUM(A1:A9)", "\r+1", "\t=x", " -2+3"]
)
def test_the_queue_export_guards_what_the_audit_guards(make_app, cell):
    """A patient name that starts like a formula after spaces or a line break: the audit's guard
    caught it, the queue export's did not (it looked at the first character only)."""
    app = make_app()
    stored_task(app, patient_name=cell)
    sid = coder_session(app)
    body = app.test_client().get(f"/queue.csv?sid={sid}").get_data(as_text=True)
    (row,) = list(csv.DictReader(io.StringIO(body)))
    assert row["patient"] == safe_cell(cell) == "'" + cell


@pytest.mark.parametrize(
    "query",
    ["_method=POST", "_external=1", "_external=1&_scheme=https", "_anchor=x", "_method=DELETE"],
)
def test_url_fors_own_arguments_in_the_queues_query_are_ignored(make_app, query):
    """``/queue?_method=POST`` gave 500 (url_for read it as its own argument: a BuildError),
    and ``?_external=1`` made the page's links absolute, to whatever Host the request named."""
    app = make_app()
    stored_task(app)
    sid = coder_session(app)
    resp = app.test_client().get(
        f"/queue?sid={sid}&state=all&{query}", headers={"Host": "evil.test"}
    )
    assert resp.status_code == 200
    assert "evil.test" not in resp.text and "#x" not in resp.text
    assert f"/queue.csv?sid={sid}&amp;state=all" in resp.text  # the queue's own filters are kept
