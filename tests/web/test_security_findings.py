"""The security review's findings (issue 14), each as the attack that worked before the fix:
session ids copied or swapped, login CSRF, idle sessions, refresh and queue floods, hostile Task
PUTs, CDS Hooks tokens that live too long or come from the future, deep bodies, a forged Host."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from joserfc import jwt
from joserfc.jwk import RSAKey

from plugin.web import create_app
from plugin.web.api_tokens import parse_tokens
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from plugin.web.visits import StaticVisitSource
from smart_launch import Registry
from smart_launch.registry import RegisteredEhr
from tests.web.conftest import bound_session, defective
from tests.web.test_launch import ISS, serve_ehr

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
APP = "http://app.test"
API_TOKEN = "test-api-token-0123456789"
CDS_ISS = "https://ehr.test/cds-client"
SERVICE = "unitguard-encounter-discharge"
KEY = RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9", "HTTP_USER_AGENT": "curl/8.5.0"}


class CountingVisits(StaticVisitSource):
    """The static visit source, counting reads of the chart (each stands for ~13 EHR requests)."""

    def __init__(self, visits: dict) -> None:
        super().__init__(visits)
        self.reads = 0

    def fetch(self, session, encounter_id):
        self.reads += 1
        return super().fetch(session, encounter_id)


@pytest.fixture
def make_app(tmp_path, clock):
    jwks = tmp_path / "ehr-jwks.json"
    jwks.write_text(json.dumps({"keys": [KEY.as_dict(private=False)]}))
    registry = Registry(
        (
            RegisteredEhr(
                name="test",
                issuer=ISS,
                client_id="ug",
                scopes=("launch", "openid", "fhirUser", "patient/Encounter.rs"),
                quirks={"cds_issuer": CDS_ISS, "cds_jwks_file": str(jwks)},
            ),
        )
    )

    def make(visits=None, **settings):
        config = Settings(
            testing=True,
            public_url=APP,
            task_db=f"sqlite:///{tmp_path}/t.sqlite",
            outbox_db="sqlite://",
            session_db=f"sqlite:///{tmp_path}/s.sqlite",
            task_api_tokens=parse_tokens(f"tests|{API_TOKEN}|{ISS}|status,priority,owner,note"),
            **settings,
        ).validated()
        return create_app(
            config,
            visits=visits or StaticVisitSource({"enc-1": defective()}),
            registry=registry,
            clock=clock,
        )

    return make


@pytest.fixture
def app(make_app):
    return make_app()


def new_session(app) -> tuple[str, str]:
    session = LaunchSession(iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1")
    return bound_session(app, session), session.csrf


def coder_session(app) -> tuple[str, str]:
    """A coder's session (the queue needs the coder role, contract section 5)."""
    session = LaunchSession(iss=ISS, fhir_user="Practitioner/coder-1", role="coder")
    return bound_session(app, session), session.csrf


def hrefs(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('href="')[1:]]


# --- 1. session ids: the cookie wins, a URL id is bound to its client ------------------------


def test_a_url_sid_that_differs_from_the_cookie_is_refused(app):
    mine, csrf = new_session(app)
    theirs, their_csrf = new_session(app)
    client = app.test_client()
    client.set_cookie("ug_sid", mine)
    assert client.get("/review/enc-1").status_code == 200
    assert client.get(f"/review/enc-1?sid={theirs}").status_code == 403
    coder, _ = coder_session(app)  # a coder's id (the queue is theirs) beside another cookie
    assert client.get(f"/queue?sid={coder}").status_code == 403
    assert app.test_client().get(f"/queue?sid={coder}").status_code == 200
    forged = client.post(
        "/review/enc-1/sign-off", data={"sid": theirs, "csrf_token": their_csrf, "confirm": "yes"}
    )
    assert forged.status_code == 403
    assert app.extensions["unitguard"].store.search()[1] == 0
    assert client.get(f"/review/enc-1?sid={mine}").status_code == 200  # the same id is fine


def test_a_sid_copied_from_a_log_opens_nothing_from_another_client(app):
    sid, csrf = new_session(app)
    thief = app.test_client()
    thief.environ_base.update(ELSEWHERE)
    assert thief.get(f"/review/enc-1?sid={sid}").status_code == 403
    coder, _ = coder_session(app)
    assert thief.get(f"/queue?sid={coder}").status_code == 403
    assert app.test_client().get(f"/queue?sid={coder}").status_code == 200
    assert thief.post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    ).status_code
    assert app.extensions["unitguard"].store.search()[1] == 0
    # the same address with another browser is another client too
    other_browser = app.test_client()
    other_browser.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (other)"
    assert other_browser.get(f"/review/enc-1?sid={sid}").status_code == 403
    # the client the launch was made for (an iframe without cookies) still works
    assert app.test_client().get(f"/review/enc-1?sid={sid}").status_code == 200


def test_a_session_bound_to_no_client_is_never_opened_by_its_url_id(app):
    session = LaunchSession(iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1")
    sid = app.extensions["unitguard"].sessions.create(session)  # made outside any request
    assert app.test_client().get(f"/review/enc-1?sid={sid}").status_code == 403


def test_without_cookies_the_id_stays_in_the_apps_links(app):
    sid, _ = new_session(app)
    html = app.test_client().get(f"/review/enc-1?sid={sid}").get_data(as_text=True)
    assert f"/review/enc-1?sid={sid}&amp;refresh=1" in html
    assert f"/logout?sid={sid}" in html


@responses.activate
def test_a_launch_keeps_the_id_out_of_links_and_then_refuses_the_bare_id(make_app):
    bundle = json.loads((FIXTURES / "units_exceed.json").read_text())
    serve_ehr(bundle)
    app = make_app(visits=StaticVisitSource({"units-exceed-enc-1": bundle}))
    browser = app.test_client()
    authorize = browser.get(f"/launch?iss={ISS}&launch=abc").headers["Location"]
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    back = browser.get(f"/callback?code=c1&state={state}")
    landing = back.headers["Location"]
    sid = parse_qs(urlsplit(landing).query)["sid"][0]
    page = browser.get(landing)
    assert page.status_code == 200
    links = hrefs(page.get_data(as_text=True))
    assert links and not [h for h in links if "sid=" in h]  # the cookie works: no id in links
    assert browser.get("/review/units-exceed-enc-1?refresh=1").status_code == 200
    # the landing URL as it would appear in a log, replayed without the cookie (even from the
    # same machine and browser): this session's browser keeps cookies, so a bare id is a copy
    replay = app.test_client()
    assert replay.get(landing).status_code == 403
    assert replay.get(f"/queue?sid={sid}").status_code == 403


# --- 2. login CSRF: the launch's browser binding is required ---------------------------------


@responses.activate
def test_a_launch_finished_in_another_browser_is_refused(app):
    serve_ehr(json.loads((FIXTURES / "units_exceed.json").read_text()))
    attacker = app.test_client()
    authorize = attacker.get(f"/launch?iss={ISS}&launch=abc").headers["Location"]
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    victim = app.test_client()  # the attacker's callback URL, opened in the victim's browser
    resp = victim.get(f"/callback?code=c1&state={state}")
    assert resp.status_code == 401
    assert victim.get_cookie("ug_sid") is None
    token_calls = [c for c in responses.calls if c.request.url == "https://auth.test/token"]
    assert token_calls == []  # the code was never exchanged


@responses.activate
def test_a_callback_with_another_launchs_binding_is_refused(app):
    serve_ehr(json.loads((FIXTURES / "units_exceed.json").read_text()))
    attacker, victim = app.test_client(), app.test_client()
    state = parse_qs(
        urlsplit(attacker.get(f"/launch?iss={ISS}&launch=a").headers["Location"]).query
    )["state"][0]
    victim.get(f"/launch?iss={ISS}&launch=b")  # the victim has a binding cookie of its own
    assert victim.get_cookie("ug_launch") is not None
    assert victim.get(f"/callback?code=c1&state={state}").status_code == 401


# --- 3. idle timeout ------------------------------------------------------------------------


def test_a_session_ends_after_15_idle_minutes(app, clock):
    sid, _ = new_session(app)
    client = app.test_client()
    url = f"/review/enc-1?sid={sid}"
    for _ in range(3):  # active every 14 minutes: still open after 42 minutes
        clock.now += 14 * 60
        assert client.get(url).status_code == 200
    clock.now += 15 * 60 + 1
    assert client.get(url).status_code == 401


def test_activity_never_stretches_a_session_past_its_lifetime(app, clock):
    sid, _ = coder_session(app)
    client = app.test_client()
    for _ in range(6):  # every 10 minutes for an hour
        clock.now += 10 * 60 - 1
        assert client.get(f"/queue?sid={sid}").status_code == 200
    clock.now += 10
    assert client.get(f"/queue?sid={sid}").status_code == 401


def test_the_idle_limit_is_a_setting(make_app, clock, monkeypatch):
    monkeypatch.setenv("UNITGUARD_IDLE_MINUTES", "5")
    assert Settings.from_env(testing=True).idle_minutes == 5
    app = make_app(idle_minutes=5)
    sid, _ = new_session(app)
    clock.now += 5 * 60 + 1
    assert app.test_client().get(f"/queue?sid={sid}").status_code == 401


# --- 4. rate limits on the queue and "Re-read from the chart" --------------------------------


def test_re_reading_from_the_chart_is_limited(make_app):
    visits = CountingVisits({"enc-1": defective()})
    app = make_app(visits=visits, rate_refresh=3)
    sid, _ = new_session(app)
    client = app.test_client()
    codes = [client.get(f"/review/enc-1?sid={sid}&refresh=1").status_code for _ in range(10)]
    assert codes == [200] * 3 + [429] * 7
    assert visits.reads == 3  # refused re-reads never reach the EHR
    assert client.get(f"/review/enc-1?sid={sid}").status_code == 200  # the page itself is not


def test_the_queue_is_limited_before_any_session_or_role_check(make_app):
    app = make_app(rate_queue=2)
    client = app.test_client()
    # no session at all: refused by the session check twice, then by the limit
    assert [client.get("/queue").status_code for _ in range(3)] == [401, 401, 429]
    sid, _ = coder_session(app)
    other = app.test_client()
    assert [other.get(f"/queue?sid={sid}").status_code for _ in range(3)] == [200, 200, 429]
    resp = other.get(f"/queue?sid={sid}")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1


def test_queue_and_refresh_limits_are_settings(monkeypatch):
    monkeypatch.setenv("UNITGUARD_RATE_QUEUE", "7")
    monkeypatch.setenv("UNITGUARD_RATE_REFRESH", "3")
    limits = Settings.from_env(testing=True).rate_per_minute()
    assert limits["queue"] == 7 and limits["refresh"] == 3


# --- 5. PUT /fhir/Task ----------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def stored_task(app):
    sid, csrf = new_session(app)
    app.test_client().post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    )
    stored = app.extensions["unitguard"].store.search()[0][0]
    return stored.task


def _put(app, task_id, body, version: str | None = 'W/"1"'):
    headers = dict(AUTH)
    if version:
        headers["If-Match"] = version
    data = body if isinstance(body, bytes) else json.dumps(body)
    return app.test_client().put(
        f"/fhir/Task/{task_id}", data=data, headers=headers, content_type="application/fhir+json"
    )


def _assert_outcome(resp, status):
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/fhir+json"
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def _unchanged(app, task):
    now = app.extensions["unitguard"].store.read(task["id"])
    assert now.version == 1 and now.task == task


def test_put_without_if_match_is_428_and_overwrites_nothing(app, stored_task):
    resp = _put(app, stored_task["id"], dict(stored_task, status="completed"), version=None)
    _assert_outcome(resp, 428)
    _unchanged(app, stored_task)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "pwned-status"},
        {"intent": "world-domination"},
        {"priority": "whenever"},
        {"status": None},
        {"description": 5},
        {"authoredOn": "yesterday"},
        {"for": "Patient/pat-1"},
        {"input": {"type": "not a list"}},
        {"note": [{"text": ["a", "list"]}]},
        {"unknownElement": True},
    ],
)
def test_an_invalid_task_is_400_with_an_operation_outcome(app, stored_task, change):
    body = {k: v for k, v in {**stored_task, **change}.items() if v is not None}
    _assert_outcome(_put(app, stored_task["id"], body), 400)
    _unchanged(app, stored_task)


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"Task"', b"42", b"null", b"{not json", b'{"resourceType": "Patient"}', b"\xff\xfe"],
)
def test_wrong_json_is_400_never_an_html_500(app, stored_task, body):
    _assert_outcome(_put(app, stored_task["id"], body), 400)
    _unchanged(app, stored_task)


def test_wrong_types_in_identifier_are_400(app, stored_task):
    for identifier in ("x", [1, 2], [{"system": 5, "value": []}], {"value": "v"}):
        resp = _put(app, stored_task["id"], dict(stored_task, identifier=identifier))
        assert resp.status_code in (400, 422)
        _assert_outcome(resp, resp.status_code)
    _unchanged(app, stored_task)


def test_the_identifier_cannot_be_changed(app, stored_task):
    moved = dict(stored_task, identifier=[{"system": "https://evil.test", "value": "other"}])
    resp = _put(app, stored_task["id"], moved)
    assert 400 <= resp.status_code < 500
    _assert_outcome(resp, resp.status_code)
    _unchanged(app, stored_task)
    dropped = {k: v for k, v in stored_task.items() if k != "identifier"}
    assert 400 <= _put(app, stored_task["id"], dropped).status_code < 500
    _unchanged(app, stored_task)


def test_a_valid_put_with_if_match_still_works(app, stored_task):
    resp = _put(app, stored_task["id"], dict(stored_task, status="in-progress", priority="asap"))
    assert resp.status_code == 200 and resp.headers["ETag"] == 'W/"2"'
    _assert_outcome(_put(app, stored_task["id"], dict(stored_task, status="completed")), 412)


# --- 8. CDS Hooks: token lifetime and body depth ---------------------------------------------


def cds_call(client, body=None, **claims):
    now = int(time.time())
    token = jwt.encode(
        {"alg": "RS384", "kid": "ehr-1"},
        {
            "iss": CDS_ISS,
            "aud": f"{APP}/cds-services/{SERVICE}",
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            **claims,
        },
        KEY,
        algorithms=["RS384"],
    )
    payload = body if body is not None else json.dumps({"hook": "encounter-discharge"})
    return client.post(
        f"/cds-services/{SERVICE}",
        data=payload,
        headers={"Authorization": f"Bearer {token}"},
        content_type="application/json",
    )


@pytest.mark.parametrize(
    "offsets",  # seconds from now, applied when the test runs
    [
        {"exp": 32503680000},  # the year 3000 (absolute)
        {"exp": 3600},  # an hour
        {"iat": -100, "exp": 250},  # 350 s in all
        {"iat": 600, "exp": 700},  # issued in the future
        {"nbf": 120},  # not valid for two minutes
        {"iat": None},  # no iat at all
        {"iat": "now"},
        {"nbf": "later"},
    ],
)
def test_cds_tokens_that_live_too_long_or_come_from_the_future_are_401(app, offsets):
    now = int(time.time())
    claims = {k: now + v if isinstance(v, int) and v < 10**9 else v for k, v in offsets.items()}
    resp = cds_call(app.test_client(), **claims)
    assert resp.status_code == 401


def test_cds_tokens_within_the_rules_and_a_small_skew_are_accepted(app):
    now = int(time.time())
    client = app.test_client()
    assert cds_call(client).status_code == 200
    assert cds_call(client, iat=now + 5, exp=now + 300, nbf=now + 5).status_code == 200


@pytest.mark.parametrize("levels", [65, 1000, 100_000])
def test_a_deeply_nested_cds_body_is_400_never_500(app, levels):
    deep = '{"hook": "encounter-discharge", "context": ' + "[" * levels + "]" * levels + "}"
    resp = cds_call(app.test_client(), body=deep)
    assert resp.status_code == 400
    assert resp.get_json()["error"]


def test_a_normally_nested_cds_body_is_reviewed(app):
    bundle = json.loads((FIXTURES / "units_exceed.json").read_text())
    body = {
        "hook": "encounter-discharge",
        "hookInstance": str(uuid.uuid4()),
        "context": {"patientId": "units-exceed-pat-1", "encounterId": "units-exceed-enc-1"},
        "prefetch": {"everything": bundle},
    }
    resp = cds_call(app.test_client(), body=json.dumps(body))
    assert resp.status_code == 200 and resp.get_json()["cards"]


# --- 9. the public URL, never the Host header -----------------------------------------------


@responses.activate
def test_a_forged_host_does_not_change_the_redirect_uri(app):
    serve_ehr(json.loads((FIXTURES / "units_exceed.json").read_text()))
    resp = app.test_client().get(f"/launch?iss={ISS}&launch=abc", headers={"Host": "evil.test"})
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["redirect_uri"] == [f"{APP}/callback"]


def test_a_forged_host_does_not_change_task_api_links(app, stored_task):
    bundle = app.test_client().get(
        "/fhir/Task?_count=1&status=requested", headers={**AUTH, "Host": "evil.test"}
    )
    body = bundle.get_json()
    urls = [link["url"] for link in body["link"]] + [e["fullUrl"] for e in body["entry"]]
    assert urls and all(u.startswith(f"{APP}/fhir/Task") for u in urls)
    assert not [u for u in urls if "evil" in u]


def test_the_public_url_must_be_a_url():
    from plugin.web.settings import SettingsError

    with pytest.raises(SettingsError, match="UNITGUARD_PUBLIC_URL"):
        Settings(testing=True, public_url="app.test").validated()
