"""The second security review's LOW and INFO findings on the web app (issue 25), each as the
attack that worked before the fix: floods of /login and the CSV export, words of an attacker's
choosing shown on our pages, formulas past the queue export's guard."""

from __future__ import annotations

import pytest

from plugin.web.sessions import LaunchSession
from tests.web import test_rate_limit
from tests.web.conftest import bound_session
from tests.web.test_rate_limit import ISS, assert_throttled

make_app = test_rate_limit.make_app  # the fixture: an app with a registered EHR and limits


def coder_session(app) -> str:
    session = LaunchSession(iss=ISS, fhir_user="Practitioner/coder-1", role="coder")
    return bound_session(app, session)


# --- rate limits on /login and the CSV export -------------------------------------------------


def test_login_is_limited_per_address(make_app):
    app = make_app(rate_launch=2)
    client = app.test_client()
    path = "/login?iss=https://evil.test/fhir"
    assert [client.get(path).status_code for _ in range(2)] == [400, 400]
    assert_throttled(client.get(path))  # 400 for ever before: each one a discovery lookup
    other = app.test_client().get(path, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 400


def test_the_csv_export_is_limited(make_app):
    app = make_app(rate_export=2)
    client = app.test_client()
    sid = coder_session(app)
    assert [client.get(f"/queue.csv?sid={sid}").status_code for _ in range(2)] == [200, 200]
    assert_throttled(client.get(f"/queue.csv?sid={sid}"))


def test_the_csv_export_limit_is_a_setting(monkeypatch):
    from plugin.web.settings import Settings

    monkeypatch.setenv("UNITGUARD_RATE_EXPORT", "3")
    assert Settings.from_env(testing=True).rate_per_minute()["export"] == 3


# --- words from the query string are never shown ---------------------------------------------

HOSTILE = "Your account is locked. Call 555-0100 to restore access"


@pytest.mark.parametrize("code", ["access_denied", "server_error", "made_up_code", HOSTILE])
def test_the_callback_shows_our_words_for_an_error_never_the_query_strings(make_app, code):
    query = {"error": code, "error_description": HOSTILE}
    resp = make_app().test_client().get("/callback", query_string=query)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "EHR" in page
    assert "Call 555" not in page and "made_up_code" not in page
