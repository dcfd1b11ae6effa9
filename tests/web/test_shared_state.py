"""State that must hold across server workers: two app instances sharing one database (what
two gunicorn workers are) share launch states, rate limits and visit re-reads. The test of
real gunicorn workers is in tests/test_serve.py."""

from __future__ import annotations

import threading

from plugin.db import make_engine
from plugin.synthetic.visit import clean_visit
from plugin.web import create_app
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from smart_launch import LaunchState, Registry, StateStore
from smart_launch.errors import StateMismatch
from smart_launch.registry import RegisteredEhr
from tests.web.conftest import bound_session
from tests.web.test_rate_limit import ISS, assert_throttled
from tests.web.test_visit_cache import CountingSource, defective

SECRET = "one-secret-for-every-worker-0123456789"


def two_workers(tmp_path, clock, source=None, **settings):
    """Two apps as two workers would build them: same settings, same database files."""
    config = Settings(
        testing=True,
        secret_key=SECRET,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db=f"sqlite:///{tmp_path}/o.sqlite",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
        **settings,
    ).validated()
    registry = Registry(
        (RegisteredEhr(name="test", issuer=ISS, client_id="ug", scopes=("launch",)),)
    )
    return [create_app(config, visits=source, registry=registry, clock=clock) for _ in range(2)]


def test_a_launch_started_by_one_worker_finishes_on_the_other_once(tmp_path):
    url = f"sqlite:///{tmp_path}/s.sqlite"
    started, finishing = StateStore(make_engine(url)), StateStore(make_engine(url))
    started.put(
        LaunchState("st-1", "verifier", ISS, "http://app/callback", 1.0e12, browser_binding="b")
    )
    got = []

    def consume(store):
        try:
            got.append(store.consume("st-1", browser_binding="b").code_verifier)
        except StateMismatch:
            got.append("refused")

    threads = [threading.Thread(target=consume, args=(s,)) for s in (finishing, started)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == ["refused", "verifier"]  # single use across processes


def test_a_rate_limit_holds_across_workers(tmp_path, clock):
    one, two = two_workers(tmp_path, clock, rate_launch=2)
    path = "/launch?iss=https://evil.test/fhir&launch=x"
    assert one.test_client().get(path).status_code == 400
    assert two.test_client().get(path).status_code == 400
    assert_throttled(one.test_client().get(path))  # not a fresh allowance per worker
    assert_throttled(two.test_client().get(path))
    clock.now += 30
    assert two.test_client().get(path).status_code == 400


def test_a_reread_on_one_worker_is_not_undone_by_the_other_workers_copy(tmp_path, clock):
    source = CountingSource({"enc-1": defective()})
    one, two = two_workers(tmp_path, clock, source)
    sid = bound_session(
        one, LaunchSession(iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1")
    )
    page = f"/review/enc-1?sid={sid}"
    assert 'data-verdict="unsupported"' in one.test_client().get(page).text
    assert 'data-verdict="unsupported"' in two.test_client().get(page).text
    assert source.fetches == 2  # each worker read it once
    two.test_client().get(page)
    assert source.fetches == 2  # and then served its own copy
    source.bundles["enc-1"] = clean_visit().bundle()  # the therapist fixed the note
    assert 'data-verdict="supported"' in one.test_client().get(page + "&refresh=1").text
    assert 'data-verdict="supported"' in two.test_client().get(page).text  # not its old copy
    assert source.fetches == 4
    two.test_client().get(page)
    one.test_client().get(page)
    assert source.fetches == 4  # both copies are fresh again
