"""Rate limits: 429 with Retry-After on launch, callback, sign-off, queue actions, CDS Hooks and
the Task API, in the form each caller reads; normal use is never limited. Time is a fake clock."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from plugin.web import create_app
from plugin.web.api_tokens import parse_tokens
from plugin.web.rate_limit import TokenBuckets
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from plugin.web.visits import StaticVisitSource
from smart_launch import Registry
from smart_launch.registry import RegisteredEhr
from tests.web.conftest import bound_session, defective

ISS = "https://ehr.test/fhir"
APP = "http://app.test"
CDS_ISS = "https://ehr.test/cds-client"
SERVICE = "unitguard-encounter-discharge"
API_TOKEN = "test-api-token-0123456789"
KEY = RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})


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
                scopes=("launch",),
                quirks={"cds_issuer": CDS_ISS, "cds_jwks_file": str(jwks)},
            ),
        )
    )

    def make(**settings):
        config = Settings(
            testing=True,
            public_url=APP,
            task_db=f"sqlite:///{tmp_path}/t.sqlite",
            outbox_db="sqlite://",
            session_db=f"sqlite:///{tmp_path}/s.sqlite",
            task_api_tokens=parse_tokens(f"tests|{API_TOKEN}|{ISS}|status"),
            **settings,
        ).validated()
        return create_app(
            config,
            visits=StaticVisitSource({"enc-1": defective()}),
            registry=registry,
            clock=clock,
        )

    return make


def new_session(app) -> tuple[str, str]:
    session = LaunchSession(iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1")
    return bound_session(app, session), session.csrf


def assert_throttled(resp, retry_after: str = "30") -> None:
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == retry_after
    assert "frame-ancestors" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"


def cds_call(client, **claims):
    token = jwt.encode(
        {"alg": "RS384", "kid": "ehr-1"},
        {
            "iss": CDS_ISS,
            "aud": f"{APP}/cds-services/{SERVICE}",
            "iat": int(time.time()),
            "exp": int(time.time()) + 300,
            "jti": str(uuid.uuid4()),
            **claims,
        },
        KEY,
        algorithms=["RS384"],
    )
    body = {
        "hook": "encounter-discharge",
        "hookInstance": str(uuid.uuid4()),
        "context": {"encounterId": "enc-1"},
        "prefetch": {"all": defective()},
    }
    return client.post(
        f"/cds-services/{SERVICE}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.mark.parametrize(
    ("path", "usual"),
    [("/launch?iss=https://evil.test/fhir&launch=x", 400), ("/callback?code=c", 401)],
)
def test_launch_and_callback_are_limited_per_address(make_app, clock, path, usual):
    app = make_app(rate_launch=2)
    client = app.test_client()
    assert [client.get(path).status_code for _ in range(2)] == [usual, usual]
    resp = client.get(path)
    assert_throttled(resp)
    assert "Too many requests" in resp.text and "Traceback" not in resp.text
    other = app.test_client().get(path, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == usual  # another address has its own allowance
    clock.now += 30  # one request's worth of allowance comes back
    assert client.get(path).status_code == usual
    assert client.get(path).status_code == 429


def test_sign_off_is_limited_per_session(make_app):
    app = make_app(rate_actions=2)
    client = app.test_client()
    sid, csrf = new_session(app)
    form = {"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    assert [client.post("/review/enc-1/sign-off", data=form).status_code for _ in range(2)] == [
        302,
        302,
    ]
    assert_throttled(client.post("/review/enc-1/sign-off", data=form))
    other_sid, other_csrf = new_session(app)  # same address, another session: not limited
    resp = client.post(
        "/review/enc-1/sign-off",
        data={"sid": other_sid, "csrf_token": other_csrf, "confirm": "yes"},
    )
    assert resp.status_code == 302


def test_made_up_session_ids_do_not_buy_a_fresh_allowance(make_app):
    app = make_app(rate_actions=2)
    client = app.test_client()
    codes = [
        client.post("/review/enc-1/sign-off", data={"sid": f"forged-{n}"}).status_code
        for n in range(3)
    ]
    assert codes == [401, 401, 429]  # counted by address, not by the invented id


def test_queue_actions_are_limited(make_app):
    app = make_app(rate_actions=2)
    client = app.test_client()
    sid, csrf = new_session(app)
    client.post("/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"})
    stored = app.extensions["unitguard"].store.search()[0][0]
    coder = LaunchSession(iss=ISS, fhir_user="Practitioner/coder-1", role="coder")
    sid, csrf = bound_session(app, coder), coder.csrf
    form = {"sid": sid, "csrf_token": csrf, "action": "reassign", "owner": "me"}
    version = stored.version
    resp = client.post(f"/queue/{stored.task['id']}/action", data={**form, "version": version})
    assert resp.status_code == 302  # sign-off and queue actions count separately
    resp = client.post(f"/queue/{stored.task['id']}/action", data={**form, "version": version + 1})
    assert resp.status_code == 302
    assert_throttled(
        client.post(f"/queue/{stored.task['id']}/action", data={**form, "version": version + 2})
    )


def test_cds_hooks_calls_are_limited_with_json(make_app):
    app = make_app(rate_cds=2)
    client = app.test_client()
    assert [cds_call(client).status_code for _ in range(2)] == [200, 200]
    resp = cds_call(client)
    assert_throttled(resp)
    assert resp.mimetype == "application/json"
    assert resp.get_json()["error"].startswith("Too many requests")


def test_task_api_is_limited_with_an_operation_outcome(make_app):
    app = make_app(rate_task_api=2)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert [client.get("/fhir/Task", headers=auth).status_code for _ in range(2)] == [200, 200]
    resp = client.get("/fhir/Task", headers=auth)
    assert_throttled(resp)
    assert resp.mimetype == "application/fhir+json"
    issue = resp.get_json()["issue"][0]
    assert resp.get_json()["resourceType"] == "OperationOutcome" and issue["code"] == "throttled"


def test_guessing_task_api_tokens_is_limited_too(make_app):
    app = make_app(rate_task_api=3)
    client = app.test_client()
    codes = [
        client.get("/fhir/Task", headers={"Authorization": f"Bearer guess-{n}"}).status_code
        for n in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_normal_use_is_never_limited_by_the_defaults(make_app):
    app = make_app()
    client = app.test_client()
    for _ in range(10):  # ten launches in a minute from one clinic address
        assert client.get("/launch?iss=https://evil.test/fhir&launch=x").status_code == 400
    sid, csrf = new_session(app)
    for n in range(20):  # a therapist re-reads and re-signs a visit many times
        if n % 2:  # a re-read from the chart every few seconds, for a whole minute
            assert client.get(f"/review/enc-1?sid={sid}&refresh=1").status_code == 200
        resp = client.post(
            "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
        )
        assert resp.status_code == 302
    coder = LaunchSession(iss=ISS, fhir_user="Practitioner/coder-1", role="coder")
    coder_sid = bound_session(app, coder)
    for _ in range(30):  # and a coder pages through the queue
        assert client.get(f"/queue?sid={coder_sid}").status_code == 200
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for _ in range(50):  # a tool paging through the Task API
        assert client.get("/fhir/Task", headers=auth).status_code == 200
    for _ in range(20):  # discharges across a ward, from the EHR's one address
        assert cds_call(client).status_code == 200


def test_limits_can_be_turned_off(make_app):
    app = make_app(rate_limits=False, rate_launch=1)
    client = app.test_client()
    codes = {client.get("/callback?code=c").status_code for _ in range(20)}
    assert codes == {401}


def test_a_limited_request_logs_nothing_identifying(make_app, caplog):
    app = make_app(rate_actions=1)
    client = app.test_client()
    sid, csrf = new_session(app)
    with caplog.at_level("DEBUG"):
        for _ in range(2):
            client.post(
                "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
            )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rate limit reached on actions" in logged
    for secret in (sid, csrf, "127.0.0.1", "pat-1", "enc-1"):
        assert secret not in logged


def test_token_bucket_bursts_then_refills_at_the_rate(clock):
    buckets = TokenBuckets(3, per=60.0, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(20.0)
    assert buckets.take("b") == 0.0  # keys are independent
    clock.now += 20
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(20.0)
    clock.now += 3600  # a long pause refills only up to the burst
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_token_buckets_are_bounded(clock):
    buckets = TokenBuckets(1, clock=clock, max_keys=2)
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")  # "a" is forgotten: memory stays bounded under a flood of clients
    assert len(buckets._buckets) == 2 and buckets.take("a") == 0.0


def test_bulk_actions_and_next_are_limited_like_the_others(make_app):
    app = make_app(rate_actions=2, rate_queue=2)
    client = app.test_client()
    coder = LaunchSession(iss=ISS, fhir_user="Practitioner/coder-1", role="coder")
    sid, csrf = bound_session(app, coder), coder.csrf
    form = {"sid": sid, "csrf_token": csrf, "bulk": "assign", "owner": "me"}
    assert [client.post("/queue/bulk", data=form).status_code for _ in range(2)] == [400, 400]
    assert_throttled(client.post("/queue/bulk", data=form))  # counted before any other check
    assert [client.get(f"/queue/next?sid={sid}").status_code for _ in range(2)] == [200, 200]
    assert_throttled(client.get(f"/queue/next?sid={sid}"))
