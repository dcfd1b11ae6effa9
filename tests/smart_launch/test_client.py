"""The FHIR client: paging, outcomes, errors, ETags, conditional create, retries, refresh."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses

from smart_launch.client import FhirClient
from smart_launch.errors import FhirConflict, FhirRequestError
from smart_launch.http import make_session

BASE = "https://ehr.test/fhir"


def bundle(resources, next_url=None, outcome=None):
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    if outcome:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries, "link": links}


@responses.activate
def test_search_follows_next_links_and_separates_outcomes():
    oo = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "diagnostics": "capped"}],
    }
    responses.get(
        f"{BASE}/Procedure",
        match=[responses.matchers.query_param_matcher({"encounter": "Encounter/e1"})],
        json=bundle([{"resourceType": "Procedure", "id": "1"}], f"{BASE}/Procedure?page=2", oo),
    )
    responses.get(
        f"{BASE}/Procedure",
        match=[responses.matchers.query_param_matcher({"page": "2"})],
        json=bundle([{"resourceType": "Procedure", "id": "2"}]),
    )
    client = FhirClient(BASE, token=lambda: "tok", session=make_session(retries=0))
    result = client.search("Procedure", {"encounter": "Encounter/e1"})
    assert [r["id"] for r in result.resources] == ["1", "2"]
    assert result.outcomes == [oo] and result.pages == 2
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok"


@responses.activate
def test_next_link_to_another_host_is_refused():
    responses.get(f"{BASE}/Goal", json=bundle([], "https://evil.test/steal"))
    client = FhirClient(BASE, token=lambda: "tok", session=make_session(retries=0))
    with pytest.raises(FhirRequestError, match="outside the FHIR server"):
        client.search("Goal", {"patient": "p"})
    assert len(responses.calls) == 1


@responses.activate
def test_operation_outcome_becomes_a_clear_error_without_the_query():
    responses.get(
        f"{BASE}/Observation",
        status=400,
        json={
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "not-supported",
                    "diagnostics": "encounter is not a supported search parameter",
                }
            ],
        },
    )
    client = FhirClient(BASE, session=make_session(retries=0))
    with pytest.raises(FhirRequestError) as info:
        client.search("Observation", {"encounter": "Encounter/secret-id"})
    assert "encounter is not a supported search parameter" in str(info.value)
    assert "secret-id" not in str(info.value) and info.value.status == 400


@responses.activate
def test_update_with_if_match_and_412():
    responses.put(
        f"{BASE}/Task/t1",
        status=412,
        json={"resourceType": "OperationOutcome", "issue": [{"diagnostics": "stale"}]},
    )
    client = FhirClient(BASE, session=make_session(retries=0))
    with pytest.raises(FhirConflict):
        client.update({"resourceType": "Task", "id": "t1"}, if_match='W/"1"')
    assert responses.calls[0].request.headers["If-Match"] == 'W/"1"'
    assert len(responses.calls) == 1  # writes are never retried


@responses.activate
def test_conditional_create_sends_if_none_exist():
    responses.post(f"{BASE}/Task", status=200, json={"resourceType": "Task", "id": "t1"})
    client = FhirClient(BASE, session=make_session(retries=0))
    task, created = client.create({"resourceType": "Task"}, if_none_exist="identifier=s|v")
    assert task["id"] == "t1" and created is False
    assert responses.calls[0].request.headers["If-None-Exist"] == "identifier=s|v"


@responses.activate
def test_401_refreshes_once_then_fails():
    tokens = ["old"]
    responses.get(f"{BASE}/Encounter/e1", status=401)
    responses.get(f"{BASE}/Encounter/e1", json={"resourceType": "Encounter", "id": "e1"})
    client = FhirClient(
        BASE,
        token=lambda: tokens[-1],
        refresh=lambda: tokens.append("new"),
        session=make_session(retries=0),
    )
    assert client.read("Encounter", "e1")["id"] == "e1"
    assert responses.calls[1].request.headers["Authorization"] == "Bearer new"


class Flaky(BaseHTTPRequestHandler):
    plan: list[tuple[int, dict]] = []
    seen: list[str] = []

    def do_GET(self):  # noqa: N802
        Flaky.seen.append(self.path)
        status, headers = Flaky.plan.pop(0) if Flaky.plan else (200, {})
        body = json.dumps({"resourceType": "Encounter", "id": "e1"}).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Flaky.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def test_get_retries_429_and_503_honouring_retry_after(flaky_server, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda s: slept.append(s))
    Flaky.plan = [(429, {"Retry-After": "2"}), (503, {}), (200, {})]
    client = FhirClient(flaky_server, session=make_session(retries=4, backoff=0.1))
    assert client.read("Encounter", "e1")["id"] == "e1"
    assert len(Flaky.seen) == 3
    assert 2.0 in slept  # Retry-After honoured


def test_gives_up_after_the_retries_with_a_clear_error(flaky_server, monkeypatch):
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda s: None)
    Flaky.plan = [(500, {})] * 10
    client = FhirClient(flaky_server, session=make_session(retries=2, backoff=0))
    with pytest.raises(FhirRequestError, match="500"):
        client.read("Encounter", "e1")
    assert len(Flaky.seen) == 3
    Flaky.plan = []


class DropsOnce(BaseHTTPRequestHandler):
    """Page 1 links to page 2; the first request for page 2 loses its connection."""

    dropped = False
    seen: list[str] = []

    def do_GET(self):  # noqa: N802
        DropsOnce.seen.append(self.path)
        if "page=2" in self.path and not DropsOnce.dropped:
            DropsOnce.dropped = True
            self.connection.close()  # no response at all: the connection drops mid-search
            return
        port = self.server.server_address[1]
        entry = [
            {"resource": {"resourceType": "Goal", "id": "2" if "page=2" in self.path else "1"}}
        ]
        link = (
            []
            if "page=2" in self.path
            else [{"relation": "next", "url": f"http://127.0.0.1:{port}/fhir/Goal?page=2"}]
        )
        body = json.dumps(
            {"resourceType": "Bundle", "type": "searchset", "entry": entry, "link": link}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_connection_dropped_mid_paging_is_retried(monkeypatch):
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda s: None)
    server = ThreadingHTTPServer(("127.0.0.1", 0), DropsOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = FhirClient(
            f"http://127.0.0.1:{server.server_address[1]}/fhir",
            session=make_session(retries=3, backoff=0),
        )
        result = client.search("Goal", {"patient": "p"})
    finally:
        server.shutdown()
        server.server_close()
    assert [r["id"] for r in result.resources] == ["1", "2"]
    assert DropsOnce.dropped and len([p for p in DropsOnce.seen if "page=2" in p]) == 2
