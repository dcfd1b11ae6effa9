"""SMART's JavaScript client in a real browser (Debian's chromium via Playwright), as apps run
it: its browser build, served from another origin than the sandbox, so that discovery, the
token endpoint and every FHIR call are cross-origin requests the sandbox must allow (its
CapabilityStatement says ``cors: true``). A standalone launch through the patient picker and
an EHR launch, on every profile."""

from __future__ import annotations

import json
import os
import shutil
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.independent.clients import JS, NPM_CI
from tests.loopback import running_sandbox

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CLIENT_ID = "fhirclient-browser"  # as js/browser/launch.html names it
PATIENT, ENCOUNTER = "kx-missing-pat-1", "kx-missing-enc-003"

# As tests/browser: locally without chromium these skip; in CI (.ci/run installs it) they fail.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (.ci/run installs it)",
)
BUNDLE = JS / "node_modules" / "fhirclient" / "build" / "fhir-client.min.js"
PAGES = {f"/{name}": JS / "browser" / name for name in ("launch.html", "index.html")}


class _AppFiles(SimpleHTTPRequestHandler):
    """The app's two pages and the client's browser build; nothing else."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        source = BUNDLE if path == "/fhir-client.js" else PAGES.get(path)
        if source is None:
            self.send_error(404)
            return
        body = source.read_bytes()
        self.send_response(200)
        kind = "text/javascript" if source == BUNDLE else "text/html; charset=utf-8"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        return


@contextmanager
def app_origin():
    if not BUNDLE.is_file():
        pytest.fail(f"fhirclient's browser build is missing: run `{NPM_CI}` first")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AppFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def outcome(page) -> dict:
    page.wait_for_selector("body[data-result], body[data-error]", state="attached", timeout=30_000)
    error = page.get_attribute("body", "data-error")
    assert error is None, f"fhirclient in the browser: {error}"
    return json.loads(page.get_attribute("body", "data-result"))


@pytest.mark.parametrize("how", ["standalone", "ehr"])
@pytest.mark.parametrize("profile", ["full", "epic", "oracle"])
def test_fhirclient_in_a_browser_on_another_origin(browser, profile, how):
    with running_sandbox(profile) as ehr, app_origin() as app:
        ehr.register(CLIENT_ID, f"{app}/index.html")
        launch = f"{app}/launch.html?iss={ehr.fhir}"
        if how == "ehr":
            launch += f"&launch={ehr.launch(ENCOUNTER, PATIENT)}"
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(launch)
            if how == "standalone":
                page.click(f'button[data-patient="{PATIENT}"]', timeout=30_000)
            result = outcome(page)
        finally:
            context.close()
    assert result["patient"] == {"resourceType": "Patient", "id": PATIENT}
    assert result["encounter"]["resourceType"] == "Encounter"
    if how == "ehr":
        assert result["encounter"]["id"] == ENCOUNTER
    assert result["user"] == {"resourceType": "Practitioner", "id": "pt"}
    assert result["fhirRelease"] == 4
    assert result["refreshed"] is True
    assert (result["pages"], result["total"]) == (4, 17)
