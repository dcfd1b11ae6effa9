"""Request bodies over UNITGUARD_MAX_BODY get 413 before anything reads them; forms are capped
far lower; a 413 comes before any session, rate limit or credential check."""

from __future__ import annotations

import io
import time
import tracemalloc

import pytest

from plugin.web import create_app
from plugin.web.api_tokens import parse_tokens
from plugin.web.settings import Settings, SettingsError


class Untouchable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the oversized body was read")

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0  # the test client rewinds the stream before sending it


@pytest.fixture
def client(tmp_path):
    settings = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
        task_api_tokens=parse_tokens("tests|a-token-of-twenty-chars|https://ehr.test/fhir|status"),
    ).validated()
    return create_app(settings).test_client()


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/fhir/Task/x", "application/fhir+json"),
        ("/cds-services/unitguard-encounter-discharge", "application/json"),
        ("/queue/x", "text/plain; charset=utf-8"),
        ("/review/enc-1/sign-off", "text/plain; charset=utf-8"),
    ],
)
def test_a_5_mb_body_gets_413_unread_before_any_credential_check(client, path, kind):
    start = time.perf_counter()
    resp = client.post(
        path,
        input_stream=Untouchable(),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(5 * 1024 * 1024)},
    )
    assert resp.status_code == 413  # not 401/403: no credential was looked at
    assert resp.headers["Content-Type"] == kind
    assert resp.headers["Connection"] == "close"
    assert time.perf_counter() - start < 0.5


def test_a_body_without_length_is_cut_off_at_the_limit(client):
    body = io.BytesIO(b"{" * (5 * 1024 * 1024))
    tracemalloc.start()
    try:
        resp = client.put(
            "/fhir/Task/x",
            input_stream=body,
            headers={"Authorization": "Bearer a-token-of-twenty-chars"},
            environ_overrides={"wsgi.input_terminated": True},
            content_type="application/fhir+json",
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert resp.status_code == 413
    assert peak < 2.5 * 1024 * 1024  # never the whole 5 MB in memory


def test_five_million_form_fields_are_refused_fast(client):
    start = time.perf_counter()
    resp = client.post(
        "/review/enc-1/sign-off",
        data=b"a&" * 5_000_000,
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code == 413
    assert time.perf_counter() - start < 1


def test_a_form_under_the_body_limit_but_over_the_form_cap_is_refused_fast(client):
    start = time.perf_counter()
    resp = client.post(
        "/review/enc-1/sign-off",
        data=b"a&" * 240_000,  # 480 KB: under 1 MiB (and Flask's 500 KB), 240,000 fields
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code == 413
    assert time.perf_counter() - start < 1


def test_ordinary_requests_pass(client):
    assert client.get("/healthz").status_code == 200
    resp = client.post("/review/enc-1/sign-off", data={"sid": "x", "csrf_token": "y"})
    assert resp.status_code != 413


def test_the_limit_is_a_setting(monkeypatch):
    monkeypatch.setenv("UNITGUARD_MAX_BODY", "2048")
    assert Settings.from_env(testing=True).max_body == 2048
    monkeypatch.setenv("UNITGUARD_MAX_BODY", "10")
    with pytest.raises(SettingsError, match="UNITGUARD_MAX_BODY"):
        Settings.from_env(testing=True)
