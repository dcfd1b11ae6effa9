"""The review page's per-session visit cache: reuse within the TTL, never across sessions,
bypassed by "Re-read from the chart" and by sign-off, forgotten when the session ends."""

from __future__ import annotations

import pytest

from plugin.synthetic.visit import clean_visit
from plugin.web import create_app
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from plugin.web.visit_cache import VisitCache
from plugin.web.visits import StaticVisitSource
from tests.web.conftest import bound_session, defective

ISS = "http://ehr.test/fhir"


class CountingSource(StaticVisitSource):
    """The in-memory EHR stand-in, counting each visit read (one read = ~14 FHIR requests)."""

    def __init__(self, bundles: dict[str, dict]) -> None:
        super().__init__(bundles)
        self.fetches = 0

    def fetch(self, session, encounter_id):
        self.fetches += 1
        return super().fetch(session, encounter_id)


@pytest.fixture
def source():
    return CountingSource({"enc-1": defective()})


def make_app(tmp_path, source, clock, **settings):
    config = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
        **settings,
    ).validated()
    return create_app(config, visits=source, clock=clock)


@pytest.fixture
def app(tmp_path, source, clock):
    return make_app(tmp_path, source, clock)


def new_session(app) -> tuple[str, str]:
    session = LaunchSession(iss=ISS, patient="Patient/pat-1", encounter="Encounter/enc-1")
    return bound_session(app, session), session.csrf


def test_second_page_load_reads_nothing_from_the_ehr(app, source):
    sid, _ = new_session(app)
    client = app.test_client()
    first = client.get(f"/review/enc-1?sid={sid}")
    second = client.get(f"/review/enc-1?sid={sid}")
    assert first.status_code == second.status_code == 200
    assert source.fetches == 1
    assert 'data-rule="units-exceed-time"' in second.get_data(as_text=True)


def test_refresh_link_rereads_the_chart(app, source):
    sid, _ = new_session(app)
    client = app.test_client()
    html = client.get(f"/review/enc-1?sid={sid}").get_data(as_text=True)
    assert f'href="/review/enc-1?sid={sid}&amp;refresh=1">Re-read from the chart' in html
    source.bundles["enc-1"] = clean_visit().bundle()  # the therapist fixed the note
    assert 'data-verdict="unsupported"' in client.get(f"/review/enc-1?sid={sid}").text
    assert source.fetches == 1
    fresh = client.get(f"/review/enc-1?sid={sid}&refresh=1").text
    assert source.fetches == 2 and 'data-verdict="supported"' in fresh
    client.get(f"/review/enc-1?sid={sid}")  # the re-read is what is cached now
    assert source.fetches == 2


def test_cached_visit_is_read_again_after_the_ttl(app, source, clock):
    sid, _ = new_session(app)
    client = app.test_client()
    client.get(f"/review/enc-1?sid={sid}")
    clock.now += 59
    client.get(f"/review/enc-1?sid={sid}")
    assert source.fetches == 1
    clock.now += 2  # 61 s after the read
    client.get(f"/review/enc-1?sid={sid}")
    assert source.fetches == 2


def test_another_session_does_not_see_the_entry(app, source):
    client = app.test_client()
    mine, _ = new_session(app)
    theirs, _ = new_session(app)
    client.get(f"/review/enc-1?sid={mine}")
    client.get(f"/review/enc-1?sid={theirs}")
    assert source.fetches == 2


def test_sign_off_reviews_fresh_data(app, source):
    sid, csrf = new_session(app)
    client = app.test_client()
    client.get(f"/review/enc-1?sid={sid}")
    source.bundles["enc-1"] = clean_visit().bundle()  # corrected in the chart since the page
    resp = client.post(
        "/review/enc-1/sign-off", data={"sid": sid, "csrf_token": csrf, "confirm": "yes"}
    )
    assert source.fetches == 2
    assert "status=clean" in resp.headers["Location"]
    assert app.extensions["unitguard"].store.search()[1] == 0
    page = client.get(resp.headers["Location"])  # the page after sign-off shows what was signed
    assert 'data-verdict="supported"' in page.text and source.fetches == 2


def test_zero_ttl_turns_the_cache_off(tmp_path, source, clock):
    app = make_app(tmp_path, source, clock, visit_cache_seconds=0)
    sid, _ = new_session(app)
    client = app.test_client()
    client.get(f"/review/enc-1?sid={sid}")
    client.get(f"/review/enc-1?sid={sid}")
    assert source.fetches == 2


def test_an_ended_session_forgets_its_visits(tmp_path, source, clock):
    app = make_app(tmp_path, source, clock, visit_cache_seconds=7200, session_minutes=60)
    cache = app.extensions["unitguard"].visit_cache
    sid, _ = new_session(app)
    client = app.test_client()
    client.get(f"/review/enc-1?sid={sid}")
    assert len(cache) == 1
    clock.now += 3601  # the session has expired; the cache entry alone would still be live
    assert client.get(f"/review/enc-1?sid={sid}").status_code == 401
    assert len(cache) == 0 and source.fetches == 1


def test_unreviewable_visit_is_not_cached(app, source):
    sid, _ = new_session(app)
    source.bundles["enc-1"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    client = app.test_client()
    assert client.get(f"/review/enc-1?sid={sid}").status_code == 422
    source.bundles["enc-1"] = defective()
    assert client.get(f"/review/enc-1?sid={sid}").status_code == 200
    assert source.fetches == 2


def test_cache_is_bounded_least_recently_used_first(clock):
    cache = VisitCache(60, size=2, clock=clock)
    cache.put("s1", "e1", {"n": 1})
    cache.put("s2", "e1", {"n": 2})
    assert cache.get("s1", "e1") == {"n": 1}  # s1 is now the most recently used
    cache.put("s3", "e1", {"n": 3})
    assert cache.get("s2", "e1") is None
    assert cache.get("s1", "e1") == {"n": 1} and cache.get("s3", "e1") == {"n": 3}


def test_cache_drops_one_visit_or_a_whole_session(clock):
    cache = VisitCache(60, clock=clock)
    cache.put("s1", "e1", {})
    cache.put("s1", "e2", {})
    cache.put("s2", "e1", {})
    cache.drop("s1", "e1")
    assert cache.get("s1", "e1") is None and cache.get("s1", "e2") == {}
    cache.drop("s1")
    assert cache.get("s1", "e2") is None and cache.get("s2", "e1") == {}


def test_cache_keys_hold_neither_session_nor_encounter_id(clock):
    cache = VisitCache(60, clock=clock)
    cache.put("the-session-id", "enc-secret-1", {})
    keys = repr(list(cache._entries))
    assert "the-session-id" not in keys and "enc-secret-1" not in keys


def test_cache_is_thread_safe(clock):
    from concurrent.futures import ThreadPoolExecutor

    cache = VisitCache(60, size=50, clock=clock)

    def one(n: int) -> bool:
        for i in range(50):
            cache.put(f"s{n}", f"e{i}", {"n": n, "i": i})
            found = cache.get(f"s{n}", f"e{i}")
            if found not in (None, {"n": n, "i": i}):
                return False
        return True

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(one, range(64)))
    assert len(cache) <= 50
