"""Helpers for running software nobody here wrote against the sandbox EHR: the Node scripts in
js/ (SMART's JavaScript client, two FHIR validators) and a headless stand-in for the browser."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

JS = Path(__file__).resolve().parent / "js"
NPM_CI = "npm ci --prefix tests/independent/js"


def node(script: str, *args: str, timeout: float = 120) -> tuple[int, dict]:
    """Run ``node js/SCRIPT ARGS...``; (exit status, the JSON object it printed last). A missing
    node or a missing ``npm ci`` fails the test with what to do: never a silent skip."""
    exe = shutil.which("node")
    if exe is None:
        pytest.fail(f"node is not installed: these tests need node 20+ and `{NPM_CI}`")
    for package in ("fhirclient", "fhir", "@medplum/core"):
        if not (JS / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"the npm package {package} is missing: run `{NPM_CI}` first")
    done = subprocess.run(
        [exe, str(JS / script), *args], capture_output=True, text=True, timeout=timeout
    )
    lines = done.stdout.strip().splitlines()
    try:
        return done.returncode, json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail(f"{script} printed no JSON (exit {done.returncode}): {done.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Form(HTMLParser):
    """The first form of a page: its action, hidden inputs and submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self.buttons: list[tuple[str, str]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._inside = named.get("action", ""), True
        elif self._inside and tag == "input" and "name" in named:
            self.fields.append((named["name"], named.get("value", "")))
        elif self._inside and tag == "button" and "name" in named:
            self.buttons.append((named["name"], named.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def browse_to_callback(url: str, redirect_uri: str, pick: str | None = None) -> str:
    """Play the user's browser from an authorize URL: follow redirects, choose the patient
    ``pick`` (else the first) when the server shows a picker, and return the redirect back to
    ``redirect_uri`` (with code and state, or error) without loading it."""
    http = requests.Session()
    response = http.get(url, allow_redirects=False, timeout=30)
    for _ in range(10):
        if response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if target.startswith(redirect_uri):
                return target
            response = http.get(target, allow_redirects=False, timeout=30)
            continue
        assert response.status_code == 200, f"authorize answered {response.status_code}"
        form = _Form()
        form.feed(response.text)
        assert form.action is not None and form.buttons, "an authorize page without a choice"
        chosen = [b for b in form.buttons if b[1] == pick] if pick else form.buttons[:1]
        assert chosen, f"the picker does not offer {pick}"
        data = [*form.fields, chosen[0]]
        response = http.post(
            urljoin(response.url, form.action), data=data, allow_redirects=False, timeout=30
        )
    raise AssertionError("the authorize step never redirected back to the app")
