"""The queue at volume, through Flask: owners from the EHR's coders and the owner filters, bulk
actions row by row under If-Match, "next" over the filtered sorted queue, "Take it" that asks
first, "Complete: corrected" with its note and units, history times with their zone, the
counts and titles of each row, and money explained on the review and Task pages."""

from __future__ import annotations

import csv
import io
import re

import pytest

from plugin.tasks.history import shown_time
from tests.web.test_queue import ISS, OTHER, coder, session, sign

ROBIN = "Practitioner/coder-2"


@pytest.fixture
def app(tmp_path):
    from plugin.web import create_app
    from plugin.web.settings import Settings
    from plugin.web.visits import StaticVisitSource
    from tests.web.test_queue import visit

    settings = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
        rate_limits=False,
    ).validated()
    bundles = {
        "enc-1": visit(),
        "enc-2": visit("Blake Okafor", "enc-2", 40),
        "enc-3": visit("Devon Moreau", "enc-3", 16),
    }
    app = create_app(settings, visits=StaticVisitSource(bundles))
    roster = app.extensions["unitguard"].roster
    roster.record(ISS, "Practitioner/coder-1", "Casey Coder", "list")
    roster.record(ISS, ROBIN, "Robin Role", "role")
    roster.record(OTHER, "Practitioner/elsewhere", "Sam Elsewhere", "list")
    return app


def rows(html: str) -> list[tuple[str, str]]:
    """(task id, version) of each queue row, in order."""
    return re.findall(r'<tr data-task="Task/(\w+)"[^>]*? data-version="(\d+)"', html)


def act(app, sid, csrf, task_id, action, **form):
    version = app.extensions["unitguard"].store.read(task_id).version
    data = {"sid": sid, "csrf_token": csrf, "version": version, "action": action, **form}
    return app.test_client().post(f"/queue/{task_id}/action", data=data)


def robin(app):
    return session(app, fhir_user=ROBIN, role="coder", user_name="Robin Role")


def test_owners_come_from_the_ehrs_coders_and_filter_the_queue(app):
    ids = [sign(app, enc) for enc in ("enc-1", "enc-2", "enc-3")]
    sid, csrf = coder(app)
    client = app.test_client()
    page = client.get(f"/queue/{ids[0]}?sid={sid}").get_data(as_text=True)
    # Reassign offers the EHR's coders by name (not another EHR's), me and unassigned
    assert f'<option value="{ROBIN}" >Robin Role</option>' in page
    assert "Sam Elsewhere" not in page and '<option value="none"' in page
    assert 'name="owner" value=' not in page  # a list, no free text box

    refused = act(app, sid, csrf, ids[0], "reassign", owner="Practitioner/made-up", reason="n")
    assert refused.status_code == 400 and ">n</textarea>" in refused.get_data(as_text=True)
    assert act(app, sid, csrf, ids[0], "reassign", owner=ROBIN).status_code == 302
    assert app.extensions["unitguard"].store.read(ids[0]).task["owner"] == {
        "reference": ROBIN,
        "display": "Robin Role",
    }
    assert act(app, sid, csrf, ids[1], "start").status_code == 302  # Casey takes it

    def listed(query: str) -> set[str]:
        html = client.get(f"/queue?sid={sid}&{query}").get_data(as_text=True)
        return {task for task, _ in rows(html)}

    assert listed("owner=me") == listed("mine=1") == {ids[1]}
    assert listed(f"owner={ROBIN}") == {ids[0]}
    assert listed("owner=none") == {ids[2]}  # the coding team's: nobody holds it
    html = client.get(f"/queue?sid={sid}&owner=none").get_data(as_text=True)
    assert '<td class="unassigned">Coding team</td>' in html
    # unassign: back to the coding team
    assert act(app, sid, csrf, ids[0], "reassign", owner="none").status_code == 302
    assert listed("owner=none") == {ids[0], ids[2]}


def test_bulk_assign_and_complete_say_row_by_row_what_was_done(app):
    ids = [sign(app, enc) for enc in ("enc-1", "enc-2", "enc-3")]
    theirs = sign(app, "enc-1", iss=OTHER)
    sid, csrf = coder(app)
    client = app.test_client()
    shown = rows(client.get(f"/queue?sid={sid}").get_data(as_text=True))
    assert {t for t, _ in shown} == set(ids)
    # meanwhile Robin takes one of them: its row's version is now stale
    rsid, rcsrf = robin(app)
    act(app, rsid, rcsrf, ids[1], "start")
    form = {
        "sid": sid,
        "csrf_token": csrf,
        "queue": "sort=age",
        "task": [f"Task/{t}" for t, _ in shown] + [f"Task/{theirs}"],
        **{f"version-{t}": v for t, v in shown},
        f"version-{theirs}": "1",
    }
    made_up = client.post("/queue/bulk", data={**form, "bulk": "assign", "owner": "Someone"})
    assert made_up.status_code == 400
    kept = made_up.get_data(as_text=True)
    assert "not one of this EHR" in kept and kept.count('" checked') == 3  # boxes kept ticked
    done = client.post("/queue/bulk", data={**form, "bulk": "assign", "owner": ROBIN})
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and 'data-done="2" data-chosen="4"' in html
    outcome = dict(re.findall(r'<tr data-task="Task/(\w+)" data-outcome="(\w+)"', html))
    assert outcome == {ids[0]: "done", ids[2]: "done", ids[1]: "changed", theirs: "refused"}
    assert "changed since your page was loaded" in html
    store = app.extensions["unitguard"].store
    assert store.read(ids[0]).task["owner"]["reference"] == ROBIN
    assert store.read(ids[1]).task["status"] == "in-progress"  # Robin's own start stands
    assert store.read(theirs).task["owner"]["reference"] == "Organization/coding-team"
    assert re.search(r'id="back" href="/queue\?[^"]*sort=age"', html)  # back to the same queue

    fresh = rows(client.get(f"/queue?sid={sid}").get_data(as_text=True))
    form = {
        "sid": sid,
        "csrf_token": csrf,
        "task": [f"Task/{t}" for t, _ in fresh],
        **{f"version-{t}": v for t, v in fresh},
    }
    no_reason = client.post("/queue/bulk", data={**form, "bulk": "complete"})
    assert no_reason.status_code == 400 and "reason" in no_reason.get_data(as_text=True)
    forged = client.post("/queue/bulk", data={**form, "csrf_token": "x", "bulk": "complete"})
    assert forged.status_code == 400 and store.read(ids[0]).task["status"] == "requested"
    done = client.post(
        "/queue/bulk", data={**form, "bulk": "complete", "reason": "payer accepts as billed"}
    )
    assert 'data-done="3" data-chosen="3"' in done.get_data(as_text=True)
    for task_id in ids:
        task = store.read(task_id).task
        assert task["status"] == "completed" and task["note"][-1]["text"] == (
            "payer accepts as billed"
        )
    assert "0 of 0 open" in client.get(f"/queue?sid={sid}").get_data(as_text=True)


def test_next_follows_the_same_filtered_sorted_queue_to_its_end(app):
    for enc in ("enc-1", "enc-2", "enc-3"):
        sign(app, enc)
    sid, csrf = coder(app)
    client = app.test_client()
    for query in ("sort=dollars", "sort=date-asc", "sort=age", "q=o"):
        order = [t for t, _ in rows(client.get(f"/queue?sid={sid}&{query}").get_data(True))]
        walked, after = [], ""
        while True:
            resp = client.get(f"/queue/next?sid={sid}&{query}{after}")
            if resp.status_code == 200:
                assert 'data-end="true"' in resp.get_data(as_text=True)
                break
            assert resp.status_code == 302
            task_id = re.search(r"/queue/(\w+)\?", resp.headers["Location"]).group(1)
            assert query in resp.headers["Location"]  # the Task page keeps the queue
            walked.append(task_id)
            after = f"&after={task_id}"
        assert walked == order, query
    # one filter: only the matching Task, then the end
    only = client.get(f"/queue/next?sid={sid}&q=okafor")
    task_id = re.search(r"/queue/(\w+)\?", only.headers["Location"]).group(1)
    page = client.get(only.headers["Location"]).get_data(as_text=True)
    assert "Blake Okafor" in page and 'id="next"' in page and "q=okafor" in page
    # completing it goes straight on: the queue is done, and the end page says so
    done = act(app, sid, csrf, task_id, "complete-no-change", queue="q=okafor")
    assert done.status_code == 302 and "/queue/next?" in done.headers["Location"]
    end = client.get(done.headers["Location"]).get_data(as_text=True)
    assert 'data-end="true" data-left="0"' in end and "Saved: Completed: no change" in end


def test_take_it_asks_before_taking_a_review_another_coder_holds(app):
    task_id = sign(app, "enc-1")
    rsid, rcsrf = robin(app)
    assert act(app, rsid, rcsrf, task_id, "start").status_code == 302
    sid, csrf = coder(app)
    asked = act(app, sid, csrf, task_id, "start")
    page = asked.get_data(as_text=True)
    assert asked.status_code == 409 and "Robin Role holds this review" in page
    assert 'id="take-confirm"' in page
    store = app.extensions["unitguard"].store
    assert store.read(task_id).task["owner"]["reference"] == ROBIN
    assert act(app, sid, csrf, task_id, "start", confirm="yes").status_code == 302
    assert store.read(task_id).task["owner"]["reference"] == "Practitioner/coder-1"


def test_complete_corrected_records_the_note_and_the_units_billed(app):
    task_id = sign(app, "enc-1")
    sid, csrf = coder(app)
    no_note = act(app, sid, csrf, task_id, "complete-corrected", **{"units-97112": "2"})
    assert no_note.status_code == 400 and "what was corrected" in no_note.get_data(True)
    bad = act(app, sid, csrf, task_id, "complete-corrected", reason="x", **{"units-97112": "2.5"})
    assert bad.status_code == 400 and "97112 is not a number of units" in bad.get_data(True)
    ok = act(
        app,
        sid,
        csrf,
        task_id,
        "complete-corrected",
        reason="rebilled at 2 units",
        **{"units-97112": "2"},
    )
    assert ok.status_code == 302
    page = app.test_client().get(f"/queue/{task_id}?sid={sid}").get_data(as_text=True)
    assert "Completed: corrected (billed 97112 x 2)" in page and "rebilled at 2 units" in page
    text = app.test_client().get(f"/queue.csv?sid={sid}&state=closed").get_data(as_text=True)
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[0]["final_units"] == "97112 x 2"
    assert table[0]["completion_note"] == "rebilled at 2 units"


def test_history_times_carry_their_time_zone(app, monkeypatch):
    task_id = sign(app, "enc-1")
    sid, _ = coder(app)
    page = app.test_client().get(f"/queue/{task_id}?sid={sid}").get_data(as_text=True)
    assert re.search(r'<time datetime="[\d-]+T[\d:]+\+00:00">[\d-]+ \d\d:\d\d UTC</time>', page)
    monkeypatch.setenv("UNITGUARD_TIMEZONE", "America/New_York")
    page = app.test_client().get(f"/queue/{task_id}?sid={sid}").get_data(as_text=True)
    assert re.search(r">[\d-]+ \d\d:\d\d E[SD]T</time>", page)
    assert shown_time("2026-03-04T15:05:00+00:00") == "2026-03-04 15:05 UTC"
    assert shown_time("2026-03-04T10:05:00-05:00") == "2026-03-04 15:05 UTC"
    assert shown_time("not a time") == "not a time"


def test_rows_count_errors_and_warnings_and_name_findings_in_words(app):
    sign(app, "enc-1")
    sid, _ = coder(app)
    html = app.test_client().get(f"/queue?sid={sid}").get_data(as_text=True)
    assert 'data-errors="2" data-warnings="0"' in html
    assert "2 errors</span> · <span" in html and "0 warnings" in html
    assert 'data-rule="units-exceed-time">More units billed than the minutes support' in html
    assert 'data-rule="doc-unsigned">Visit note not signed' in html
    # the filter menu names findings in words too, the value stays the rule id
    assert '<option value="doc-unsigned" >Visit note not signed</option>' in html
    assert re.search(r'<input type="checkbox" name="task" value="Task/\w+"', html)


def test_money_is_explained_on_the_review_and_the_task_page(app):
    sid, _ = session(app, patient="Patient/pat-enc-1", encounter="Encounter/enc-1")
    review = app.test_client().get(f"/review/enc-1?sid={sid}").get_data(as_text=True)
    task_id = sign(app, "enc-1")
    csid, _ = coder(app)
    task = app.test_client().get(f"/queue/{task_id}?sid={csid}").get_data(as_text=True)
    for page in (review, task):
        assert 'data-billed-total="105.00" data-at-risk="105.00" data-prices="charges"' in page
        assert "Billed $105.00; $105.00 of it at risk." in page
        assert "the clinic&#39;s charges on the claim lines, not what the payer allows" in page
        # each finding's own amount: the unsigned note puts the whole visit at risk, the
        # excess unit its own price; counted once per line in the visit's total
        assert "$105.00 at risk from this finding" in page
        assert "$35.00 at risk from this finding" in page
        assert "counts each line once" in page
        # and what the units finding read: the times and the units billed
        assert 'Times and values read:</span>\n    <span class="values">97112 09:00-09:24, ' in page
