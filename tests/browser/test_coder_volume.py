"""The coder at volume in a real browser (Debian's chromium via Playwright), on one sandbox and
one app for the whole module: working 20 Tasks the old way and with the keys and "next" (page
loads and keystrokes counted), bulk assignment chosen with the keys, quotes and money on the
pages, and axe-core's accessibility check of the queue, a Task page and the review page."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

from plugin.review import review_bundle
from plugin.tasks.build import review_task
from plugin.tasks.names import People
from tests.browser.test_browser import ARGS, CHROMIUM, open_visit, pytestmark  # noqa: F401
from tests.browser.test_coder import coder_login
from tests.loopback import APPS, running_app, running_sandbox
from tests.web.test_queue import visit

playwright = pytest.importorskip("playwright.sync_api")
log = logging.getLogger(__name__)
AXE = Path(__file__).resolve().parents[1] / "independent/js/node_modules/axe-core/axe.min.js"
FLOW = 20  # Tasks worked in each flow
# A JSON file the tests add their numbers to (the counts, what axe-core found), when set.
REPORT = os.environ.get("UNITGUARD_BROWSER_REPORT")


def report(key: str, value: object) -> None:
    log.info("%s: %s", key, json.dumps(value))
    if REPORT:
        path = Path(REPORT)
        found = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**found, key: value}, indent=1))


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def world():
    """One sandbox and one app; 2 x FLOW Tasks written to the app's store as sign-offs write
    them ("Flow01 Before".. and "Flow01 After".. patients), and 3 more for the bulk test."""
    with running_sandbox("full") as ehr, running_app(ehr, rate_limits=False) as app:
        ehr.register("unitguard", f"{app}/callback")
        store = APPS[app].extensions["unitguard"].store
        team = {"reference": "Organization/coding-team", "display": "Coding team"}
        names = [f"Flow{n:02d} {kind}" for kind in ("Before", "After") for n in range(FLOW)]
        names += [f"Bulk{n} Chosen" for n in range(3)]
        for n, name in enumerate(names):
            report = review_bundle(visit(name, f"flow-{n}"))
            people = People(name, f"2{n:05d}", "Dana Reyes, PT")
            task = review_task(report, issuer=ehr.fhir, owner=team, people=people)
            store.create(task)
        yield ehr, app


class Counter:
    """Page loads of the main frame and keys pressed, as a coder would count them."""

    def __init__(self, page) -> None:
        self.page, self.loads, self.keys = page, 0, 0
        self.learned: dict[str, int] = {}  # Tabs from a page's start to a control
        page.on("load", self._loaded)

    def _loaded(self, _page) -> None:
        self.loads += 1

    def stop(self) -> None:
        self.page.remove_listener("load", self._loaded)

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.keys += 1

    def tab_to(self, selector: str, limit: int = 150) -> None:
        """Tab until the focus is on ``selector``, each Tab pressed and counted. The number
        found the first time is pressed straight off the next times (then checked), which
        spares a look at the focus after every key."""
        learned = self.learned.get(selector, 0)
        for _ in range(learned):
            self.press("Tab")
        for n in range(learned, limit):
            if self.page.evaluate("s => !!document.activeElement?.matches(s)", selector):
                self.learned[selector] = n
                return
            self.press("Tab")
        raise AssertionError(f"{selector} is not reachable with Tab")

    def enter_and_wait(self) -> None:
        with self.page.expect_navigation():
            self.press("Enter")


BACK = 'header a[href="/queue"], header a[href^="/queue?"]'


def work_the_old_way(counter: Counter, queue_url: str, tasks: int) -> None:
    """Today's flow: from the queue, Tab to the first row's link and open it; Tab to
    "Complete: no change" and press it; Tab to "Back to the queue" and follow it."""
    page = counter.page
    page.goto(queue_url)
    for _ in range(tasks):
        counter.tab_to("tr[data-task] a")
        counter.enter_and_wait()
        counter.tab_to("#complete-no-change")
        counter.enter_and_wait()
        counter.tab_to(BACK)
        counter.enter_and_wait()


def work_with_keys(counter: Counter, queue_url: str) -> list[str]:
    """The new flow: j and Enter open the first review; then c and Enter complete each one and
    go straight on to the next, until the queue says it has ended. Returns the Tasks seen."""
    page = counter.page
    page.goto(queue_url)
    counter.press("j")
    assert page.evaluate("document.activeElement.closest('tr').classList.contains('current')")
    counter.enter_and_wait()
    seen = []
    while page.locator('[data-end="true"]').count() == 0:
        seen.append(page.locator("section.verdict").get_attribute("data-task"))
        counter.press("c")
        assert page.evaluate("document.activeElement.id") == "complete-no-change"
        counter.enter_and_wait()
    return seen


def test_working_20_tasks_takes_fewer_loads_and_keys_with_keys_and_next(browser, world, shots):
    ehr, app = world
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    queue = coder_login(context, app, ehr.fhir)
    sid = re.search(r"sid=([^&]+)", queue.url).group(1)

    before = Counter(queue)
    work_the_old_way(before, f"{app}/queue?sid={sid}&q=before", FLOW)
    before.stop()
    queue.goto(f"{app}/queue?sid={sid}&q=before")
    assert queue.locator(".count").inner_text().startswith("0 of ")

    queue.goto(f"{app}/queue?sid={sid}&q=after")
    names = queue.locator("tr[data-task] a.open").all_inner_texts()
    assert sorted(names) == [f"Flow{n:02d} After" for n in range(FLOW)]
    rows = queue.locator("tr[data-task]")
    listed = [rows.nth(n).get_attribute("data-task") for n in range(rows.count())]
    after = Counter(queue)
    seen = work_with_keys(after, f"{app}/queue?sid={sid}&q=after")
    after.stop()
    assert seen == listed  # each once, in the queue's order
    assert queue.locator('[data-end="true"][data-left="0"]').count() == 1
    counts = {
        "before": {"page_loads": before.loads, "keystrokes": before.keys},
        "after": {"page_loads": after.loads, "keystrokes": after.keys},
    }
    report(f"working {FLOW} Tasks", counts)
    # with "next" a Task costs one page load and two keys (c, Enter), plus the start
    assert after.loads == FLOW + 2 and after.keys == 2 * FLOW + 2
    assert before.loads == 3 * FLOW + 1 and before.keys > 5 * after.keys
    context.close()


def axe_violations(frame) -> list[dict]:
    """axe-core's violations on the page or frame (the script is injected by evaluation, so
    the app's Content-Security-Policy stays as it is)."""
    frame.evaluate(AXE.read_text())
    result = frame.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert len(result["passes"]) > 10  # it ran its rules over the page
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"]), "help": v["help"]}
        for v in result["violations"]
    ]


def test_bulk_with_keys_and_the_pages_pass_axe(browser, world, shots):
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail("axe-core is missing: npm ci --prefix tests/independent/js")
        pytest.skip("axe-core is not installed (npm ci --prefix tests/independent/js)")
    ehr, app = world
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    queue = coder_login(context, app, ehr.fhir)
    sid = re.search(r"sid=([^&]+)", queue.url).group(1)
    queue.goto(f"{app}/queue?sid={sid}&q=chosen")
    found = {"queue": axe_violations(queue)}
    # choose two rows with the keys, the third with the mouse; assign them to me
    queue.keyboard.press("j")
    queue.keyboard.press("x")
    queue.keyboard.press("j")
    queue.keyboard.press("x")
    queue.locator('tr[data-task] input[name="task"]').nth(2).check()
    assert queue.locator("#chosen").inner_text() == "(3 chosen)"
    queue.keyboard.press("?")
    assert queue.locator("dialog#keys").is_visible()
    queue.keyboard.press("Escape")
    queue.screenshot(path=str(shots / "queue.png"), full_page=True)
    queue.select_option("#bulk-owner", "me")
    queue.click("#bulk-assign")
    assert queue.locator('[data-bulk="assign"][data-done="3"][data-chosen="3"]').count() == 1
    assert queue.locator('tr[data-outcome="done"]').count() == 3
    found["bulk result"] = axe_violations(queue)

    queue.goto(f"{app}/queue?sid={sid}&q=chosen")
    queue.locator("tr[data-task] a.open").first.click()
    assert queue.locator('.finding[data-rule="units-exceed-time"] .money-line').count() == 1
    assert queue.locator(".money[data-prices='charges']").count() == 1
    found["task"] = axe_violations(queue)
    queue.screenshot(path=str(shots / "task.png"), full_page=True)

    therapist = browser.new_context(viewport={"width": 1100, "height": 900})
    page = therapist.new_page()
    frame = open_visit(page, ehr, "units-exceed-enc-1")
    assert frame.locator(".money").count() == 1
    app_frame = next(f for f in page.frames if f.url.startswith(app))
    found["review"] = axe_violations(app_frame)
    page.screenshot(path=str(shots / "review.png"), full_page=True)
    report("axe-core violations", found)
    serious = {
        where: [v for v in violations if v["impact"] in ("serious", "critical")]
        for where, violations in found.items()
    }
    assert serious == {where: [] for where in found}
    therapist.close()
    context.close()
