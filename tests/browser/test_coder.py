"""The coder's side in a real browser (Debian's chromium via Playwright): therapists sign off from
the sandbox chart, a coder signs in standalone at /login, works the queue (filters, CSV, the Task
page, a refused form that keeps what was typed, a 412, completion, reopen) and logs out; the
EHR menu's "Coding work queue" launch; and the refused cross-patient and cross-EHR access."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.browser.test_browser import ARGS, CHROMIUM, open_visit, pytestmark  # noqa: F401
from tests.loopback import running_app, running_sandbox

playwright = pytest.importorskip("playwright.sync_api")
VISITS = ("units-exceed-enc-1", "missing-minutes-enc-1", "doc-weak-narrative-enc-1")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def sign_off(page, ehr, encounter: str):
    """A therapist launches the visit from the chart and signs it off (confirming errors)."""
    frame = open_visit(page, ehr, encounter)
    button = frame.locator("#sign-off")
    if int(button.get_attribute("data-errors")) > 0:
        assert re.match(r"Sign off with \d+ errors?: send to coding review", button.inner_text())
        button.click()  # not ticked: the browser keeps the form (the box is required)
        assert frame.locator("p.status").count() == 0
        frame.locator("#confirm").check()
    button.click()
    frame.locator("p.status").wait_for()
    assert "Task created" in frame.locator("p.status").inner_text()
    return frame


def coder_login(context, app: str, issuer: str, user: str = "Practitioner/coder-1"):
    """A standalone sign-in from the landing page: pick the EHR, then the user at the EHR."""
    page = context.new_page()
    page.goto(f"{app}/")
    page.click(f'a.login[data-iss="{issuer}"]')
    page.click(f'button[data-user="{user}"]')
    page.wait_for_url(re.compile(r".*/queue\?.*"))
    return page


def sid_and_csrf(page, app: str) -> tuple[str, str]:
    """The session id in the page's URL and its CSRF token (from the logout form)."""
    sid = re.search(r"sid=([^&]+)", page.url).group(1)
    confirm = page.context.new_page()
    confirm.goto(f"{app}/logout?sid={sid}")
    csrf = confirm.locator('input[name="csrf_token"]').get_attribute("value")
    confirm.close()
    return sid, csrf


def test_coder_signs_in_works_the_queue_and_logs_out(browser, shots):
    with running_sandbox("full") as ehr, running_app(ehr) as app:
        ehr.register("unitguard", f"{app}/callback")
        therapist = browser.new_context(viewport={"width": 1100, "height": 900})
        page = therapist.new_page()
        for n, encounter in enumerate(VISITS):
            frame = sign_off(page, ehr, encounter)
            if n == 0:
                header = frame.locator("p.patient").inner_text()
                assert "Cameron Lindqvist" in header and "2026-03-04" in header
                assert frame.locator('.finding[data-rule="units-exceed-time"]').count() == 1
            if n == 1:  # one cause, one problem: the units follow from the missing minutes
                cause = frame.locator('.finding[data-rule="missing-minutes"]')
                assert cause.locator('.follows[data-rule="units-exceed-time"]').count() == 1
                assert "Because of this" in cause.inner_text()

        coders = browser.new_context(viewport={"width": 1280, "height": 800})
        landing = coders.new_page()
        landing.goto(f"{app}/")
        assert "checks that a therapy visit" in landing.locator("main").inner_text()
        landing.screenshot(path=str(shots / "landing.png"), full_page=True)
        queue = coder_login(coders, app, ehr.fhir)
        sid = sid_and_csrf(queue, app)[0]
        count = queue.locator(".count")
        assert count.inner_text().startswith("3 of 3 open")
        row = queue.locator('tr[data-task][data-encounter="Encounter/units-exceed-enc-1"]')
        text = row.inner_text()
        for expected in ("Cameron Lindqvist", "100102", "2026-03-04", "Dana Reyes, PT"):
            assert expected in text
        assert "Medicare Part B" in text and "Coding team" in text
        assert row.get_attribute("data-dollars") == "70.00"

        # filters: partial text, a finding chosen from those present, sort, and the CSV
        queue.fill('input[name="q"]', "lindq")
        queue.click('form.filters button[type="submit"]')
        assert queue.locator(".count").inner_text().startswith("1 of 3 open")
        queue.goto(f"{app}/queue?sid={sid}")
        options = queue.locator('select[name="rule"] option')
        values = [options.nth(n).get_attribute("value") for n in range(options.count())]
        assert "units-exceed-time" in values and "cloned-note" not in values
        assert "More units billed than the minutes support" in options.all_inner_texts()
        queue.select_option('select[name="rule"]', "missing-minutes")
        queue.select_option('select[name="sort"]', "date")
        queue.click('form.filters button[type="submit"]')
        assert queue.locator(".count").inner_text().startswith("1 of 3 open")
        export = queue.request.get(app + queue.locator("a.export").get_attribute("href"))
        rows = list(csv.reader(io.StringIO(export.text())))
        assert rows[0][:3] == ["task", "patient", "mrn"] and len(rows) == 2
        assert rows[1][1] == "Emery Patel" and "missing-minutes" in rows[1][11]

        # the Task page: services, findings with evidence and fix, history, the snapshot
        queue.goto(f"{app}/queue?sid={sid}")
        queue.locator('tr[data-encounter="Encounter/units-exceed-enc-1"] a.open').click()
        task = queue
        assert task.locator('tr[data-code="97112"]').get_attribute("data-supported-units") == "1"
        finding = task.locator('.finding[data-rule="units-exceed-time"]')
        assert "Fix:" in finding.inner_text()
        assert task.locator('tr[data-action="signed-off"]').count() == 1
        snapshot = coders.new_page()
        snapshot.goto(app + task.locator("#snapshot").get_attribute("href"))
        assert snapshot.locator('[data-snapshot="true"]').count() == 1
        snapshot.close()

        task.click("#start")
        task.locator("p.status").wait_for()
        assert task.locator('[data-status="in-progress"]').count() == 1
        assert "Casey Coder" in task.locator("section.verdict").inner_text()  # the owner

        # a refused form keeps what was chosen and says what to do
        task.select_option("#owner", "none")
        task.click("#reject")
        assert "Write the reason to reject" in task.locator("p.error").inner_text()
        assert task.locator("#owner").input_value() == "none"

        # a second coder has the page open; the first completes it; the second gets a 412
        stale = coders.new_page()
        task_id = task.locator("section.verdict").get_attribute("data-task").split("/")[1]
        stale.goto(f"{app}/queue/{task_id}?sid={sid}")
        task.fill('textarea[name="reason"]', "rebilled 97112 at 1 unit")
        task.click("#complete-corrected")
        task.locator("p.status").wait_for()  # straight on to the next review of the queue
        saved = task.locator("p.status").inner_text()
        assert "Saved: Completed: corrected (billed 97112 x 1" in saved
        assert task.locator("section.verdict").get_attribute("data-task") != f"Task/{task_id}"
        task.click("#previous")  # back to the review just saved
        assert task.locator('[data-status="completed"]').count() == 1
        stale.fill('textarea[name="reason"]', "duplicate of another visit")
        stale.click("#reject")
        assert stale.locator('[data-conflict="true"]').count() == 1
        assert stale.locator('textarea[name="reason"]').input_value() == (
            "duplicate of another visit"
        )
        # closed: read-only except Reopen, which needs a reason
        assert task.locator("#complete-corrected").count() == 0
        task.click("#reopen")
        assert "reason to reopen" in task.locator("p.error").inner_text()
        task.fill('textarea[name="reason"]', "payer asked for the note again")
        task.click("#reopen")
        task.locator("p.status").wait_for()
        assert task.locator('[data-reopened="true"]').count() == 1
        history = task.locator("section.history").inner_text()
        assert "payer asked for the note again" in history and "Casey Coder" in history
        assert "rebilled 97112 at 1 unit" in history and " UTC" in history

        # log out: confirm, then the old URL and the old cookie are refused
        queue_url = f"{app}/queue?sid={sid}"
        task.click("a.logout")
        task.click("#logout")
        assert task.locator('[data-logged-out="true"]').count() == 1
        assert coders.new_page().goto(queue_url).status == 401
        assert coders.new_page().goto(f"{app}/queue").status == 401
        therapist.close()
        coders.close()


def test_coding_work_queue_launch_from_the_ehr_menu(browser):
    with running_sandbox("full") as ehr, running_app(ehr) as app:
        ehr.register("unitguard", f"{app}/callback")
        context = browser.new_context()
        page = context.new_page()
        sign_off(page, ehr, "units-exceed-enc-1")
        page.goto(f"{ehr.base_url}/")
        page.click("#coder-launch")
        frame = page.frame_locator("iframe#app")
        frame.locator("table.queue").wait_for(timeout=20_000)
        assert frame.locator("tr[data-task]").count() == 1
        assert frame.locator('.who[data-role="coder"]').count() == 1
        # a coder through a PractitionerRole code, standalone
        other = browser.new_context()
        assert (
            coder_login(other, app, ehr.fhir, "Practitioner/coder-2")
            .locator("tr[data-task]")
            .count()
            == 1
        )
        # a user who is neither on the list nor holds the role is refused the queue
        refused = other.new_page()
        response = refused.goto(f"{ehr.base_url}/chart/coder-launch?user=Practitioner/frontdesk-1")
        assert response.ok
        inner = refused.frame_locator("iframe#app")
        inner.locator("[data-error]").wait_for(timeout=20_000)
        assert inner.locator('[data-error="403"]').count() == 1
        context.close()
        other.close()


def test_cross_patient_and_cross_ehr_access_is_refused(browser):
    with (
        running_sandbox("full") as ehr,
        running_sandbox("full") as other_ehr,
        running_app(ehr, others=(other_ehr,)) as app,
    ):
        for box in (ehr, other_ehr):
            box.register("unitguard", f"{app}/callback")
        first, second = browser.new_context(), browser.new_context()
        page_a = first.new_page()
        frame_a = sign_off(page_a, ehr, "units-exceed-enc-1")
        sid_a = frame_a.locator('input[name="sid"]').first.get_attribute("value")
        csrf_a = frame_a.locator('input[name="csrf_token"]').first.get_attribute("value")
        own_task = frame_a.locator("span.task").get_attribute("data-task-id")
        frame_b = sign_off(second.new_page(), ehr, "missing-minutes-enc-1")
        other_task = frame_b.locator("span.task").get_attribute("data-task-id")

        # the session id copied into another browser (no cookie) opens nothing
        thief = browser.new_page()
        thief.goto(f"{app}/review/units-exceed-enc-1?sid={sid_a}")
        assert thief.locator('[data-error="403"]').count() == 1
        thief.close()

        probe = first.new_page()
        assert probe.goto(f"{app}/queue?sid={sid_a}").status == 403
        assert probe.goto(f"{app}/queue.csv?sid={sid_a}").status == 403
        assert probe.goto(f"{app}/queue/{other_task}?sid={sid_a}").status == 403
        own = probe.goto(f"{app}/queue/{own_task}?sid={sid_a}")
        assert own.status == 200 and probe.locator("form.actions").count() == 0  # read-only
        form = {"sid": sid_a, "csrf_token": csrf_a, "version": "1", "action": "reject"}
        for task_id in (other_task, own_task):
            posted = probe.request.post(
                f"{app}/queue/{task_id}/action", form={**form, "reason": "not mine"}
            )
            assert posted.status == 403

        # a coder of the other EHR sees none of the first EHR's Tasks
        coder = browser.new_context()
        queue = coder_login(coder, app, other_ehr.fhir)
        assert queue.locator(".count").inner_text().startswith("0 of 0 open")
        sid, csrf = sid_and_csrf(queue, app)
        assert queue.goto(f"{app}/queue/{other_task}?sid={sid}").status == 403
        posted = queue.request.post(
            f"{app}/queue/{other_task}/action",
            form={"sid": sid, "csrf_token": csrf, "version": "1", "action": "complete-no-change"},
        )
        assert posted.status == 403
        # the coder of the first EHR still sees both, untouched
        mine = coder_login(browser.new_context(), app, ehr.fhir)
        assert mine.locator(".count").inner_text().startswith("2 of 2 open")
        for context in (first, second, coder):
            context.close()
