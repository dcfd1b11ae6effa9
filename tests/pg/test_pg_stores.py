"""Task store, outbox, sessions, launch states and rate limits on PostgreSQL, raced by real
processes (what gunicorn workers are): one If-Match completion wins and the other gets 412;
each outbox write is delivered exactly once; a launch is consumed once; a limit holds."""

from __future__ import annotations

import multiprocessing

import orjson

from plugin.db import make_engine
from plugin.tasks.outbox import Outbox
from plugin.tasks.store import TaskStore
from plugin.web.rate_limit import RateLimiter
from plugin.web.sessions import LaunchSession, SessionStore
from smart_launch import LaunchState, StateStore
from smart_launch.errors import StateMismatch
from tests.tasks.test_tasks import ISS, defective_task

TOKEN = "pg-test-token-0123456789"
CTX = multiprocessing.get_context("fork")


def _app(url: str):
    from plugin.web import create_app
    from plugin.web.api_tokens import parse_tokens
    from plugin.web.settings import Settings

    settings = Settings(
        testing=True,
        secret_key="the-same-secret-in-every-worker",
        task_db=url,
        outbox_db=url,
        session_db=url,
        task_api_tokens=parse_tokens(f"tests|{TOKEN}|{ISS}|status"),
        rate_limits=False,
    ).validated()
    return create_app(settings)


def _complete(app, task_id: str, barrier, results) -> None:
    client = app.test_client()  # the app built before the fork, as gunicorn's workers get it
    auth = {"Authorization": f"Bearer {TOKEN}"}
    current = client.get(f"/fhir/Task/{task_id}", headers=auth)
    task = dict(current.json, status="completed")
    barrier.wait(timeout=30)  # both read version 1; now both try to complete it
    resp = client.put(
        f"/fhir/Task/{task_id}",
        data=orjson.dumps(task),
        headers={
            **auth,
            "If-Match": current.headers["ETag"],
            "Content-Type": "application/fhir+json",
        },
    )
    results.put(resp.status_code)


def run_all(target, args_list) -> None:
    procs = [CTX.Process(target=target, args=args) for args in args_list]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0


def test_two_processes_complete_one_task_one_wins_the_other_gets_412(pg_url):
    store = TaskStore(pg_url)
    app = _app(pg_url)
    for n in range(5):  # several rounds: the race must come out right every time
        task = defective_task()
        task["identifier"][0]["value"] += f"-{n}"
        stored, created = store.create(task)
        assert created and stored.version == 1
        task_id = stored.task["id"]
        barrier, results = CTX.Barrier(2), CTX.Queue()
        run_all(_complete, [(app, task_id, barrier, results)] * 2)
        assert sorted(results.get(timeout=5) for _ in range(2)) == [200, 412]
        assert store.read(task_id).version == 2
        assert store.read(task_id).task["status"] == "completed"


def _create_same(url: str, barrier, results) -> None:
    store = TaskStore(url)
    barrier.wait(timeout=30)
    results.put(store.create(defective_task())[1])


def test_two_processes_creating_one_identifier_leave_one_task(pg_url):
    store = TaskStore(pg_url)  # the tables exist before the race; kept for the fixture
    barrier, results = CTX.Barrier(2), CTX.Queue()
    run_all(_create_same, [(pg_url, barrier, results)] * 2)
    assert sorted(results.get(timeout=5) for _ in range(2)) == [False, True]
    assert len(store.search()[0]) == 1


def _deliver(url: str, log_path: str, barrier) -> None:
    box = Outbox(url, base_delay=0)

    def send(target: str, task: dict) -> None:
        with open(log_path, "a") as log:  # O_APPEND: one line per send, from either process
            log.write(f"{task['n']}\n")

    barrier.wait(timeout=30)
    box.deliver(send)


def test_the_outbox_delivers_exactly_once_with_two_workers(pg_url, tmp_path):
    box = Outbox(pg_url)
    for n in range(60):
        box.enqueue("https://ehr.test/fhir", f"task-{n}", {"n": n})
    log = tmp_path / "sent.log"
    barrier = CTX.Barrier(2)
    run_all(_deliver, [(pg_url, str(log), barrier)] * 2)
    sent = [int(n) for n in log.read_text().split()]
    assert sorted(sent) == list(range(60))  # two racing workers: each write sent once
    assert box.pending() == 0


def _consume(url: str, barrier, results) -> None:
    store = StateStore(make_engine(url))
    barrier.wait(timeout=30)
    try:
        results.put(store.consume("state-1", browser_binding="b").code_verifier)
    except StateMismatch:
        results.put("refused")


def test_sessions_and_launch_states_are_shared_and_single_use(pg_url):
    sessions = SessionStore(pg_url)
    sid = sessions.create(LaunchSession(iss="https://ehr.test/fhir", patient="Patient/p"))
    assert SessionStore(pg_url).get(sid).patient == "Patient/p"  # another process's store
    StateStore(make_engine(pg_url)).put(
        LaunchState(
            "state-1",
            "verifier",
            "https://ehr.test/fhir",
            "http://app/cb",
            1e12,
            browser_binding="b",
        )
    )
    barrier, results = CTX.Barrier(2), CTX.Queue()
    run_all(_consume, [(pg_url, barrier, results)] * 2)
    assert sorted(results.get(timeout=5) for _ in range(2)) == ["refused", "verifier"]


def _spend(url: str, barrier, results) -> None:
    limiter = RateLimiter({"launch": 10}, engine=make_engine(url), salt=b"shared-salt")
    barrier.wait(timeout=30)
    results.put(
        sum(limiter.take("launch", "smart.launch", "addr:10.0.0.1") == 0 for _ in range(10))
    )


def test_a_rate_limit_holds_across_processes(pg_url):
    RateLimiter({"launch": 10}, engine=make_engine(pg_url))  # the table, as the app makes it
    barrier, results = CTX.Barrier(2), CTX.Queue()
    run_all(_spend, [(pg_url, barrier, results)] * 2)
    assert sum(results.get(timeout=5) for _ in range(2)) == 10  # not 10 per process
