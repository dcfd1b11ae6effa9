"""The coder queue at size: N open review Tasks (default 10,000) of one EHR, plus 10% of another,
listed and filtered through the app (the whole GET /queue: the page, its counts and its filter
choices) with a coder's session; "next" (GET /queue/next after a Task deep in the queue, to the
redirect); and a bulk action on 50 Tasks (POST /queue/bulk: assign 50 to the coder, each Task
read, checked and written under If-Match, and the row-by-row page). Reports p50/p95 ms; the
queue's target is p95 < 300 ms.

SQLite always; PostgreSQL too when UNITGUARD_TEST_PG_URL is set (a scratch database: the
benchmark drops and refills its ``tasks`` table). Last lines: ``queue p95 ms (sqlite[/pg]): ...``,
then the same for next and bulk.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from plugin.tasks import store as store_module  # noqa: E402
from plugin.tasks.build import IDENTIFIER_SYSTEM, INPUT_SYSTEM, RULE_SYSTEM  # noqa: E402
from plugin.web import create_app  # noqa: E402
from plugin.web.security import client_fingerprint  # noqa: E402
from plugin.web.sessions import LaunchSession  # noqa: E402
from plugin.web.settings import Settings  # noqa: E402

ISS, OTHER = "https://ehr.example.org/fhir", "https://other.example.org/fhir"
THERAPISTS = [f"{g} {f}, PT" for g in ("Dana", "Sam", "Lee", "Rui") for f in ("Reyes", "Ortiz")]
PAYERS = ("Medicare Part B", "Aetna", "BlueCross", "Humana", "Medicaid", "UnitedHealthcare")
RULES = (
    "units-exceed-time",
    "doc-unsigned",
    "missing-minutes",
    "doc-no-deficit",
    "missing-kx",
    "cloned-note",
    "minutes-overlap",
    "code-selection",
)
QUERIES = {
    "list (dollars)": "",
    "sort by age": "&sort=age",
    "sort by date, page 40": "&sort=date&page=40",
    "therapist": f"&therapist={THERAPISTS[3]}",
    "payer + rule": "&payer=Aetna&rule=missing-kx",
    "text search": "&q=okaf",
    "mine": "&mine=1",
    "unassigned": "&owner=none",
    "date range": "&from=2026-02-01&to=2026-02-28",
    "list, choices not cached": "&state=open",
}
COLD = "list, choices not cached"  # the filter choices are read afresh for each request
NEXT = {
    "next (dollars)": "",
    "next (age)": "&sort=age",
    "next (date), therapist": f"&sort=date&therapist={THERAPISTS[3]}",
    "next, unassigned": "&owner=none",
}
BULK = 50  # Tasks in one bulk action


def value(code: str, key: str, val) -> dict:
    return {"type": {"coding": [{"system": INPUT_SYSTEM, "code": code}]}, key: val}


def fake_task(n: int, issuer: str, rng: random.Random) -> dict:
    rules = rng.sample(RULES, rng.randint(1, 3))
    day = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 180))
    inputs = [
        {
            "type": {"coding": [{"system": RULE_SYSTEM, "code": r}], "text": "error"},
            "valueString": f"{r}: a message of ordinary length that names its numbers. Fix: do it",
        }
        for r in rules
    ]
    inputs += [
        value("dollars-at-risk", "valueMoney", {"value": round(rng.uniform(0, 300), 2)}),
        value(
            "patient-name",
            "valueString",
            f"{rng.choice(['Avery', 'Blake', 'Casey', 'Devon'])} "
            f"{rng.choice(['Nguyen', 'Okafor', 'Patel', 'Sato'])}{n}",
        ),
        value("patient-mrn", "valueString", str(100000 + n)),
        value("therapist-name", "valueString", rng.choice(THERAPISTS)),
        value("payer", "valueString", rng.choice(PAYERS)),
        value("date-of-service", "valueDate", day.date().isoformat()),
        value("ehr", "valueUri", issuer),
        value(
            "review", "valueAttachment", {"contentType": "application/json", "data": "e30=" * 400}
        ),
    ]
    owner = (
        {"reference": "Practitioner/coder-1"}
        if n % 17 == 0
        else {"reference": "Organization/coding-team", "display": "Coding team"}
    )
    return {
        "resourceType": "Task",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": f"{issuer}-{n}"}],
        "status": "requested" if n % 10 else "in-progress",
        "intent": "order",
        "encounter": {"reference": f"Encounter/e{n}"},
        "for": {"reference": f"Patient/p{n}"},
        "owner": owner,
        "authoredOn": (day + timedelta(days=3)).isoformat(timespec="seconds"),
        "input": inputs,
        "note": [{"time": day.isoformat(), "text": "Signed off"}],
    }


def fill(url: str, n: int) -> None:
    """Bulk-load the Tasks in one transaction (the store's own columns, as create() writes)."""
    store = store_module.TaskStore(url)
    table = store_module.tasks
    rng = random.Random(7)
    now = datetime.now(UTC).isoformat()
    rows = []
    for i in range(n + n // 10):
        issuer = ISS if i < n else OTHER
        task = fake_task(i, issuer, rng)
        task["id"] = f"t{i}"
        rows.append(
            dict(
                store_module._columns(task),
                id=task["id"],
                version=1,
                last_updated=now,
                body=orjson.dumps(task),
            )
        )
    with store.engine.begin() as conn:
        conn.execute(table.delete())
        for start in range(0, len(rows), 2000):
            conn.execute(table.insert(), rows[start : start + 2000])


def p50_p95(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def measure_next(client, sid: str, n: int, repeats: int) -> dict[str, tuple[float, float]]:
    """GET /queue/next after a Task drawn from anywhere in the queue (to its redirect)."""
    rng = random.Random(11)
    out = {}
    for name, query in NEXT.items():
        times = []
        for _ in range(repeats):
            after = f"t{rng.randrange(n)}"
            start = time.perf_counter()
            resp = client.get(f"/queue/next?sid={sid}&after={after}{query}")
            times.append((time.perf_counter() - start) * 1000)
            assert resp.status_code in (200, 302), resp.status_code
        out[name] = p50_p95(times)
    return out


def measure_bulk(app, client, sid: str, csrf: str, n: int, repeats: int) -> tuple[float, float]:
    """POST /queue/bulk assigning 50 open Tasks (each under If-Match) to the coder."""
    store = app.extensions["unitguard"].store
    rng = random.Random(13)
    times = []
    for _ in range(repeats):
        chosen = [f"t{i}" for i in rng.sample(range(n), BULK)]
        form = {"sid": sid, "csrf_token": csrf, "bulk": "assign", "owner": "me"}
        form["task"] = [f"Task/{t}" for t in chosen]
        for task_id in chosen:
            form[f"version-{task_id}"] = str(store.read(task_id).version)
        start = time.perf_counter()
        resp = client.post("/queue/bulk", data=form)
        times.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.status_code
        assert f'data-done="{BULK}"' in resp.get_data(as_text=True)
    return p50_p95(times)


def measure(url: str, n: int, repeats: int) -> dict[str, tuple[float, float]]:
    fill(url, n)
    settings = Settings(
        testing=True, task_db=url, outbox_db="sqlite://", session_db="sqlite://", rate_limits=False
    ).validated()
    app = create_app(settings)
    session = LaunchSession(iss=ISS, fhir_user="Practitioner/coder-1", role="coder")
    client = app.test_client()
    with app.test_request_context(environ_base=client.environ_base):
        # bound to this client, as a launch from it would bind it
        sid = app.extensions["unitguard"].sessions.create(session, client=client_fingerprint())
    out = {}
    for name, query in QUERIES.items():
        times = []
        for _ in range(repeats):
            if name == COLD:
                app.extensions["unitguard"].store._choices.clear()
            start = time.perf_counter()
            resp = client.get(f"/queue?sid={sid}{query}")
            times.append((time.perf_counter() - start) * 1000)
            assert resp.status_code == 200, resp.status_code
        out[name] = p50_p95(times)
    out.update(measure_next(client, sid, n, repeats))
    out["bulk assign, 50 Tasks"] = measure_bulk(app, client, sid, session.csrf, n, repeats // 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    targets = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets["sqlite"] = f"sqlite:///{tmp}/queue.sqlite"
        if os.environ.get("UNITGUARD_TEST_PG_URL"):
            targets["pg"] = os.environ["UNITGUARD_TEST_PG_URL"]
        worst: dict[str, dict[str, float]] = {"queue": {}, "next": {}, "bulk": {}}
        for name, url in targets.items():
            results = measure(url, args.tasks, args.repeats)
            print(
                f"{name}: {args.tasks:,} open Tasks of this EHR (+{args.tasks // 10:,} of another)"
            )
            for query, (p50, p95) in results.items():
                print(f"  {query:<28} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
            for kind, queries in (("queue", QUERIES), ("next", NEXT)):
                worst[kind][name] = max(results[q][1] for q in queries)
            worst["bulk"][name] = results["bulk assign, 50 Tasks"][1]
    for kind, found in worst.items():
        names = "/".join(found)
        print(f"{kind} p95 ms ({names}): " + "/".join(f"{v:.0f}" for v in found.values()))


if __name__ == "__main__":
    main()
