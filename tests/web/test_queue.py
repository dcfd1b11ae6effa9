"""The coder queue, the Task page, logout and the therapist page's wording, through Flask; and
the pieces under them (names captured at sign-off, the store's search, the plain words)."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

import orjson
import pytest

from plugin.synthetic.visit import VisitBuilder
from plugin.tasks.names import human_name, mrn, people
from plugin.tasks.store import TaskStore
from plugin.web import create_app
from plugin.web.queue_export import neutralise
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from plugin.web.visits import StaticVisitSource
from plugin.web.wording import billing_advice, grouped, title, units
from tests.web.conftest import bound_session, defective

ISS = "http://ehr.test/fhir"
OTHER = "http://other-ehr.test/fhir"


def visit(patient_name: str = "Avery Nguyen", encounter: str = "enc-1", minutes: int = 24):
    """The defective visit (97112 billed 3 units, note unsigned) of its own patient and
    encounter: every reference to the builder's enc-1 and pat-1 renamed."""
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", f"09:{minutes:02d}")
    b.line("97112", 3)
    text = orjson.dumps(b.bundle()).decode()
    text = text.replace('"Encounter/enc-1"', f'"Encounter/{encounter}"')
    text = text.replace('"Patient/pat-1"', f'"Patient/pat-{encounter}"')
    bundle = orjson.loads(text)
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Patient":
            given, family = patient_name.split(" ", 1)
            r["name"] = [{"given": [given], "family": family}]
            r["id"] = f"pat-{encounter}"
        if r["resourceType"] == "Encounter" and r["id"] == "enc-1":
            r["id"] = encounter
    return bundle


@pytest.fixture
def app(tmp_path):
    settings = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
    ).validated()
    bundles = {
        "enc-1": visit(),
        "enc-2": visit("Blake <b>Okafor</b>", "enc-2", 40),
        "enc-3": visit("=HYPERLINK Moreau", "enc-3"),
    }
    return create_app(settings, visits=StaticVisitSource(bundles))


def session(app, **kw) -> tuple[str, str]:
    launch = LaunchSession(**{"iss": ISS, **kw})
    return bound_session(app, launch), launch.csrf


def sign(app, encounter: str, iss: str = ISS) -> str:
    sid, csrf = session(
        app,
        iss=iss,
        patient=f"Patient/pat-{encounter}",
        encounter=f"Encounter/{encounter}",
        fhir_user="Practitioner/pt",
        user_name="Dana Reyes, PT",
    )
    client = app.test_client()
    resp = client.post(
        f"/review/{encounter}/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    store = app.extensions["unitguard"].store
    return store.search(encounter=f"Encounter/{encounter}")[0][0].task["id"]


def coder(app, iss: str = ISS) -> tuple[str, str]:
    return session(app, iss=iss, fhir_user="Practitioner/coder-1", role="coder", user_name="Casey")


def test_rows_name_the_patient_escaped_and_count_n_of_n(app):
    for enc in ("enc-1", "enc-2", "enc-3"):
        sign(app, enc)
    sid, _ = coder(app)
    client = app.test_client()
    html = client.get(f"/queue?sid={sid}").get_data(as_text=True)
    assert "3 of 3 open" in html
    rows = re.findall(
        r'<tr data-task="Task/\w+" data-encounter="Encounter/enc-\d" '
        r'data-dollars="\d+\.\d\d"',
        html,
    )
    assert len(rows) == 3
    assert "Blake &lt;b&gt;Okafor&lt;/b&gt;" in html and "<b>Okafor" not in html
    assert "Avery Nguyen" in html and "MRN 100001" in html and "Dana Reyes, PT" in html
    found = client.get(f"/queue?sid={sid}&q=okaf").get_data(as_text=True)
    assert "1 of 3 open" in found and "Avery Nguyen" not in found
    # choices come from the values present
    assert '<option value="Dana Reyes, PT"' in html and "cloned-note" not in html
    by_date = client.get(f"/queue?sid={sid}&therapist=Nobody").get_data(as_text=True)
    assert "0 of 3 open" in by_date and "no review matches these filters" in by_date


def test_sort_paging_and_mine(app, monkeypatch):
    monkeypatch.setattr("plugin.web.queue_pages.PAGE_SIZE", 2)
    ids = [sign(app, enc) for enc in ("enc-1", "enc-2", "enc-3")]
    sid, csrf = coder(app)
    client = app.test_client()
    first = client.get(f"/queue?sid={sid}&sort=dollars").get_data(as_text=True)
    assert "Page 1 of 2" in first and 'rel="next"' in first
    amounts = [float(x) for x in re.findall(r'data-dollars="([\d.]+)"', first)]
    assert amounts == sorted(amounts, reverse=True)
    second = client.get(f"/queue?sid={sid}&sort=dollars&page=2").get_data(as_text=True)
    assert len(re.findall(r"<tr data-task=", second)) == 1
    version = app.extensions["unitguard"].store.read(ids[1]).version
    client.post(
        f"/queue/{ids[1]}/action",
        data={"sid": sid, "csrf_token": csrf, "version": version, "action": "start"},
    )
    mine = client.get(f"/queue?sid={sid}&mine=1").get_data(as_text=True)
    assert "1 of 3 open" in mine and f"Task/{ids[1]}" in mine


def test_csv_export_is_the_filtered_queue_with_formulas_neutralised(app):
    for enc in ("enc-1", "enc-3"):
        sign(app, enc)
    sid, _ = coder(app)
    resp = app.test_client().get(f"/queue.csv?sid={sid}&q=hyperlink")
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 2 and rows[1][1] == "'=HYPERLINK Moreau"
    for cell, out in (
        ("=1+1", "'=1+1"),
        ("+1", "+1"),  # a number
        ("+1+cmd", "'+1+cmd"),
        ("-2", "-2"),  # a number, not a formula: kept, as in the audit's outputs
        ("-2+3", "'-2+3"),
        (" =1+1", "' =1+1"),  # spreadsheets look past leading spaces and line breaks
        ("\n=x", "'\n=x"),
        ("@x", "'@x"),
        ("plain", "plain"),
        (None, ""),
        ("\tx", "'\tx"),
    ):
        assert neutralise(cell) == out


def test_each_ehrs_coders_see_only_its_tasks(app):
    ours = sign(app, "enc-1")
    theirs = sign(app, "enc-2", iss=OTHER)
    sid, csrf = coder(app, OTHER)
    client = app.test_client()
    html = client.get(f"/queue?sid={sid}").get_data(as_text=True)
    assert "1 of 1 open" in html and f"Task/{theirs}" in html and f"Task/{ours}" not in html
    assert client.get(f"/queue/{ours}?sid={sid}").status_code == 403
    assert client.get(f"/queue/{ours}/review?sid={sid}").status_code == 403
    resp = client.post(
        f"/queue/{ours}/action",
        data={"sid": sid, "csrf_token": csrf, "version": 1, "action": "complete-no-change"},
    )
    assert resp.status_code == 403
    assert app.extensions["unitguard"].store.read(ours).task["status"] == "requested"
    csv_text = client.get(f"/queue.csv?sid={sid}").get_data(as_text=True)
    assert theirs in csv_text and ours not in csv_text


def test_a_clinician_sees_only_its_patients_task_read_only(app):
    own, other = sign(app, "enc-1"), sign(app, "enc-2")
    sid, csrf = session(app, patient="Patient/pat-enc-1", encounter="Encounter/enc-1")
    client = app.test_client()
    assert client.get(f"/queue?sid={sid}").status_code == 403
    assert client.get(f"/queue.csv?sid={sid}").status_code == 403
    assert client.get(f"/queue/{other}?sid={sid}").status_code == 403
    page = client.get(f"/queue/{own}?sid={sid}")
    assert page.status_code == 200 and 'class="actions"' not in page.get_data(as_text=True)
    for task_id in (own, other):
        resp = client.post(
            f"/queue/{task_id}/action",
            data={"sid": sid, "csrf_token": csrf, "version": 1, "action": "complete-no-change"},
        )
        assert resp.status_code == 403
    # nor another visit's review: the launch is for enc-1
    assert client.get(f"/review/enc-2?sid={sid}").status_code == 403


def test_task_page_history_closed_read_only_and_reopen(app):
    task_id = sign(app, "enc-1")
    sid, csrf = coder(app)
    client = app.test_client()
    store = app.extensions["unitguard"].store
    page = client.get(f"/queue/{task_id}?sid={sid}").get_data(as_text=True)
    assert 'data-rule="units-exceed-time"' in page and "Fix:" in page
    assert 'data-code="97112" data-billed-units="3"' in page
    assert "The review as it stood at sign-off" in page
    snap = client.get(f"/queue/{task_id}/review?sid={sid}").get_data(as_text=True)
    assert 'data-snapshot="true"' in snap and 'data-rule="doc-unsigned"' in snap
    base = {"sid": sid, "csrf_token": csrf}
    client.post(
        f"/queue/{task_id}/action",
        data={**base, "version": 1, "action": "complete-no-change", "reason": "ok"},
    )
    closed = client.get(f"/queue/{task_id}?sid={sid}").get_data(as_text=True)
    assert 'id="reopen"' in closed and 'id="complete-corrected"' not in closed
    refused = client.post(
        f"/queue/{task_id}/action", data={**base, "version": 2, "action": "reject", "reason": "x"}
    )
    assert refused.status_code == 409 and "press Reopen" in refused.get_data(as_text=True)
    no_reason = client.post(
        f"/queue/{task_id}/action", data={**base, "version": 2, "action": "reopen"}
    )
    assert no_reason.status_code == 400 and "reason to reopen" in no_reason.get_data(as_text=True)
    client.post(
        f"/queue/{task_id}/action",
        data={**base, "version": 2, "action": "reopen", "reason": "payer query"},
    )
    task = store.read(task_id).task
    assert task["status"] == "requested"
    page = client.get(f"/queue/{task_id}?sid={sid}").get_data(as_text=True)
    assert 'data-reopened="true"' in page and "Reopened: payer query" in page
    history = re.findall(r'<tr data-action="([\w-]+)">', page)
    assert history == ["signed-off", "complete-no-change", "reopen"]
    assert "Casey" in page and "Dana Reyes, PT" in page


def test_re_sign_after_completion_reopens_only_when_the_review_changed(app):
    task_id = sign(app, "enc-1")
    sid, csrf = coder(app)
    client = app.test_client()
    store = app.extensions["unitguard"].store
    client.post(
        f"/queue/{task_id}/action",
        data={"sid": sid, "csrf_token": csrf, "version": 1, "action": "complete-no-change"},
    )
    sign(app, "enc-1")  # the therapist signs the same visit again, unchanged
    task = store.read(task_id).task
    assert task["status"] == "completed" and task["businessStatus"]["text"] == "no-change"
    actions = [e["extension"][0]["valueCode"] for e in task["note"]]
    assert actions == ["signed-off", "complete-no-change", "re-signed"]
    assert task["note"][-1]["extension"][1]["valueString"] == "Signed off again, no change"
    assert "0 of 0 open" in client.get(f"/queue?sid={sid}&reopened=1").get_data(as_text=True)

    # now the chart changes: 97112 billed 4 units instead of 3 (units and money change)
    bundle = app.extensions["unitguard"].visits.bundles["enc-1"]
    claim = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
    claim["item"][0]["quantity"]["value"] = 4
    sign(app, "enc-1")
    task = store.read(task_id).task
    assert task["status"] == "requested"
    queue = client.get(f"/queue?sid={sid}&reopened=1").get_data(as_text=True)
    assert "1 of 1 open" in queue and 'data-reopened="true"' in queue
    actions = [e["extension"][0]["valueCode"] for e in task["note"]]
    assert actions == ["signed-off", "complete-no-change", "re-signed", "reopened"]
    why = task["note"][-1]["text"]
    assert "Re-signed after the review was closed" in why and "units" in why


def test_logout_confirms_then_ends_the_session_for_url_and_cookie(app):
    sid, csrf = coder(app)
    client = app.test_client()
    form = client.get(f"/logout?sid={sid}").get_data(as_text=True)
    assert 'method="post"' in form and csrf in form
    assert client.get(f"/queue?sid={sid}").status_code == 200  # GET alone ends nothing
    assert client.post("/logout", data={"sid": sid, "csrf_token": "forged"}).status_code == 400
    done = client.post("/logout", data={"sid": sid, "csrf_token": csrf})
    assert done.status_code == 200 and 'data-logged-out="true"' in done.get_data(as_text=True)
    assert "ug_sid=;" in done.headers.get("Set-Cookie", "")
    assert client.get(f"/queue?sid={sid}").status_code == 401
    client.set_cookie("ug_sid", sid)
    assert client.get("/queue").status_code == 401


def test_therapist_page_wording_and_sign_off_button(app):
    sid, _ = session(app, patient="Patient/pat-enc-1", encounter="Encounter/enc-1")
    html = app.test_client().get(f"/review/enc-1?sid={sid}").get_data(as_text=True)
    assert "Avery Nguyen" in html and "visit of 2026" in html
    assert "More units billed than the minutes support" in html  # a plain title
    assert 'data-rule="units-exceed-time"' in html
    assert "Sign off with 2 errors: send to coding review" in html
    assert 'name="confirm" value="yes" required' in html
    assert "Bill 2 units of 97112, not 3." in html


def test_billing_advice_grammar():
    s = SimpleNamespace
    before = [
        s(code="97112", suggested_units=2, billed_units=0, supported_units=2),
        s(code="97110", suggested_units=1, billed_units=0, supported_units=1),
    ]
    assert billing_advice(before, billed=False) == "Bill 2 units of 97112 and 1 unit of 97110."
    none = [s(code="97112", suggested_units=1), s(code="97530", suggested_units=0)]
    text = billing_advice(none, billed=False)
    assert text.startswith("Bill 1 unit of 97112; remove the 97530 line") and "0 units" not in text
    assert billing_advice([s(code="97530", suggested_units=0)], billed=False).startswith(
        "Remove the 97530 line"
    )
    after = [
        s(code="97112", billed_units=3, supported_units=1),
        s(code="97110", billed_units=1, supported_units=0),
        s(code="97140", billed_units=1, supported_units=1),
    ]
    assert billing_advice(after, billed=True) == (
        "Bill 1 unit of 97112, not 3 and remove the 97110 line."
    )
    assert billing_advice(after[2:], billed=True) is None
    assert units(1) == "1 unit" and units(0) == "0 units" and units(3) == "3 units"
    assert title("doc-unsigned") == "Visit note not signed" and title("new-rule") == "New rule"


def test_findings_sharing_a_cause_are_grouped_but_all_kept():
    f = SimpleNamespace
    findings = [
        f(rule="units-exceed-time", code="97112"),
        f(rule="doc-unsigned", code=None),
        f(rule="missing-minutes", code="97112"),
        f(rule="units-exceed-time", code="97110"),
    ]
    problems = grouped(findings)
    assert [p.main.rule for p in problems] == [
        "doc-unsigned",
        "missing-minutes",
        "units-exceed-time",
    ]
    assert [x.rule for x in problems[1].follows] == ["units-exceed-time"]
    assert sum(1 + len(p.follows) for p in problems) == len(findings)


def test_names_and_mrn_from_the_bundle():
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "name": [
            {"use": "old", "family": "Before"},
            {"use": "official", "given": ["Ana", "B"], "family": "Cruz"},
        ],
        "identifier": [{"value": "999"}, {"type": {"coding": [{"code": "MR"}]}, "value": "12345"}],
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": "r",
        "practitioner": {"reference": "Practitioner/x", "display": "Dr Display"},
    }
    bundle = {"entry": [{"resource": patient}, {"resource": role}]}
    found = people(bundle, "Patient/p", "PractitionerRole/r")
    assert (found.patient_name, found.patient_mrn) == ("Ana B Cruz", "12345")
    assert found.therapist_name == "Dr Display"
    assert human_name({"name": [{"text": " Sam  "}]}) == "Sam" and human_name({}) is None
    assert mrn({"identifier": [{"value": "1"}]}) is None


def test_db_upgrade_adds_the_queue_columns_to_an_older_table(tmp_path):
    import pytest
    import sqlalchemy as sa

    from plugin import schema

    url = f"sqlite:///{tmp_path}/old.sqlite"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE tasks (id VARCHAR(64) PRIMARY KEY, version INTEGER NOT NULL, "
                "identifier VARCHAR(300) NOT NULL UNIQUE, status VARCHAR(32) NOT NULL, code "
                "VARCHAR(200) NOT NULL, owner VARCHAR(200), patient VARCHAR(200), encounter "
                "VARCHAR(200), priority VARCHAR(16), rules VARCHAR(2000) NOT NULL, therapist "
                "VARCHAR(200), payer VARCHAR(200), service_date VARCHAR(10), dollars_at_risk FLOAT "
                "NOT NULL, authored_on VARCHAR(40) NOT NULL, last_updated VARCHAR(40) NOT NULL, "
                "body BLOB NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO tasks VALUES ('a', 1, 's|v', 'requested', 'c', NULL, NULL, NULL, "
                "NULL, '', NULL, NULL, NULL, 0, '', '', '{}')"
            )
        )
    with pytest.raises(schema.SchemaError, match="made before schema migrations"):
        TaskStore(url)  # the store no longer alters a table itself: `unitguard db upgrade` does
    assert schema.upgrade(engine) == (None, schema.head())
    store = TaskStore(url)
    assert store.count(issuer=ISS) == 0 and store.count() == 1
    assert store.choices() == {"therapist": [], "payer": [], "owner": [], "rule": []}


def test_queue_text_search_escapes_like_wildcards(tmp_path):
    app = create_app(
        Settings(
            testing=True,
            task_db=f"sqlite:///{tmp_path}/t.sqlite",
            outbox_db="sqlite://",
            session_db="sqlite://",
        ).validated(),
        visits=StaticVisitSource({"enc-1": defective()}),
    )
    sid, csrf = session(app, patient="Patient/pat-1", encounter="Encounter/enc-1")
    app.test_client().post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    )
    store = app.extensions["unitguard"].store
    assert store.count(issuer=ISS, text="%") == 0 and store.count(issuer=ISS, text="_") == 0
    assert store.count(issuer=ISS, text="example") == 1
