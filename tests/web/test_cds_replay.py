"""A CDS Hooks JWT is accepted once by all the server's workers (second security review, LOW:
the jti was remembered per worker, so one JWT was accepted twice)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from joserfc import jwt

from plugin.db import make_engine
from plugin.web import create_app
from plugin.web.replay import SharedSeenTokens
from plugin.web.settings import Settings
from smart_launch import Registry
from smart_launch.registry import RegisteredEhr
from tests.web.test_cds_hooks import request_body
from tests.web.test_security_findings import APP, CDS_ISS, KEY, SERVICE

SECRET = "one-secret-for-every-worker-0123456789"


@pytest.fixture
def workers(tmp_path):
    """Two apps as two gunicorn workers build them: same settings, same database files."""
    jwks = tmp_path / "ehr-jwks.json"
    jwks.write_text(json.dumps({"keys": [KEY.as_dict(private=False)]}))
    registry = Registry(
        (
            RegisteredEhr(
                name="test",
                issuer="https://ehr.test/fhir",
                client_id="ug",
                scopes=("launch",),
                quirks={"cds_issuer": CDS_ISS, "cds_jwks_file": str(jwks)},
            ),
        )
    )
    config = Settings(
        testing=True,
        secret_key=SECRET,
        public_url=APP,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db=f"sqlite:///{tmp_path}/o.sqlite",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
        rate_limits=False,
    ).validated()
    return [create_app(config, registry=registry) for _ in range(2)]


def signed(jti: str | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": CDS_ISS,
        "aud": f"{APP}/cds-services/{SERVICE}",
        "iat": now,
        "exp": now + 300,
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode({"alg": "RS384", "kid": "ehr-1"}, claims, KEY, algorithms=["RS384"])


def call(app, token: str) -> int:
    return (
        app.test_client()
        .post(
            f"/cds-services/{SERVICE}",
            json=request_body("units_exceed.json"),
            headers={"Authorization": f"Bearer {token}"},
        )
        .status_code
    )


def test_a_jwt_replayed_to_another_worker_is_refused(workers):
    first, second = workers
    token = signed()
    assert call(first, token) == 200
    assert call(second, token) == 401  # 200 before: each worker kept its own jti list
    assert call(first, token) == 401
    assert call(second, signed()) == 200  # another token is still welcome


def test_two_workers_given_one_jwt_at_once_accept_it_once(workers):
    token = signed()
    codes: list[int] = []
    threads = [threading.Thread(target=lambda a=a: codes.append(call(a, token))) for a in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 401]


def test_used_jtis_are_kept_until_their_token_expires_then_deleted(tmp_path):
    now = [1_000.0]
    seen = SharedSeenTokens(make_engine(f"sqlite:///{tmp_path}/s.sqlite"), clock=lambda: now[0])
    assert seen.first_use("iss", "a", expires=1_300.0)
    assert not seen.first_use("iss", "a", expires=1_300.0)
    assert seen.first_use("other-iss", "a", expires=1_300.0)  # jti is unique per issuer
    assert seen.first_use("iss", "b", expires=1_100.0)
    assert seen.count() == 3
    now[0] = 1_400.0  # every token seen so far has expired, and a purge is due
    assert seen.first_use("iss", "c", expires=now[0] + 300)
    assert seen.count() == 1
