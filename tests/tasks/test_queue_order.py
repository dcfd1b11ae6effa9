"""The store's "next" (a keyset step) walks a filtered queue in exactly the order its search
lists it, ties and missing dates included; "unassigned" is every Task no person holds; the
coder roster keeps each EHR's coders by name."""

from __future__ import annotations

import random

from plugin.tasks.build import IDENTIFIER_SYSTEM, INPUT_SYSTEM, RULE_SYSTEM
from plugin.tasks.roster import CoderRoster
from plugin.tasks.store import TaskStore

ISS = "http://ehr.test/fhir"
SORTS = ("-dollars-at-risk", "authored-on", "-date-of-service", "date-of-service")


def value(code: str, key: str, val) -> dict:
    return {"type": {"coding": [{"system": INPUT_SYSTEM, "code": code}]}, key: val}


def task(n: int, rng: random.Random) -> dict:
    inputs = [
        {"type": {"coding": [{"system": RULE_SYSTEM, "code": "doc-unsigned"}], "text": "error"}},
        value("dollars-at-risk", "valueMoney", {"value": rng.choice([0.0, 35.0, 70.0])}),
        value("ehr", "valueUri", ISS),
        value("payer", "valueString", rng.choice(["Aetna", "Medicare Part B"])),
    ]
    if n % 4:  # every fourth Task has no date of service (a NULL in the sorted column)
        inputs.append(value("date-of-service", "valueDate", f"2026-03-0{rng.randint(1, 3)}"))
    owner = rng.choice(
        [
            {"reference": "Organization/coding-team", "display": "Coding team"},
            {"reference": "Practitioner/coder-1", "display": "Casey Coder"},
            {"display": "typed by hand before owners were a list"},
            None,
        ]
    )
    out = {
        "resourceType": "Task",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": f"t{n}"}],
        "status": rng.choice(["requested", "in-progress", "completed"]),
        "intent": "order",
        "authoredOn": f"2026-03-0{rng.randint(1, 2)}T10:00:00+00:00",
        "input": inputs,
    }
    if owner:
        out["owner"] = owner
    return out


def walk(store: TaskStore, sort: str, **filters) -> list[str]:
    found, after = [], None
    while (step := store.next_after(sort, after, **filters)) is not None:
        after = step.task["id"]
        found.append(after)
        assert len(found) <= 100
    return found


def check_order(store: TaskStore) -> None:
    rng = random.Random(5)
    for n in range(40):
        store.create(task(n, rng))
    for sort in SORTS:
        for filters in ({}, {"status": ["requested", "in-progress"]}, {"payer": "Aetna"}):
            listed = [s.task["id"] for s in store.search(sort=sort, count=100, **filters)[0]]
            assert walk(store, sort, **filters) == listed, (sort, filters)
    # a Task outside the filters still marks a place in the order
    closed = store.search(status=["completed"], sort=SORTS[0], count=1)[0][0].task["id"]
    open_ids = [s.task["id"] for s in store.search(status=["requested"], sort=SORTS[0])[0]]
    following = store.next_after(SORTS[0], closed, status=["requested"])
    everything = [s.task["id"] for s in store.search(sort=SORTS[0], count=100)[0]]
    later = everything[everything.index(closed) + 1 :]
    expected = next((t for t in later if t in open_ids), None)
    assert (following.task["id"] if following else None) == expected


def test_next_walks_the_queue_in_its_listed_order_on_sqlite(tmp_path):
    check_order(TaskStore(f"sqlite:///{tmp_path}/t.sqlite"))


def test_unassigned_is_every_task_no_person_holds(tmp_path):
    store = TaskStore(f"sqlite:///{tmp_path}/t.sqlite")
    rng = random.Random(3)
    for n in range(30):
        store.create(task(n, rng))
    everything = store.search(count=100)[0]
    nobody = {
        s.task["id"]
        for s in everything
        if not (s.task.get("owner") or {}).get("reference", "").startswith("Practitioner/")
    }
    assert {s.task["id"] for s in store.search(owner="none", count=100)[0]} == nobody
    assert 0 < len(nobody) < len(everything)
    assert store.count(owner="none") + store.count(owner="Practitioner/coder-1") == 30


def test_the_roster_keeps_each_ehrs_coders_by_name(tmp_path):
    roster = CoderRoster(TaskStore(f"sqlite:///{tmp_path}/t.sqlite").engine)
    roster.seed(ISS, ["Practitioner/coder-1", "Organization/not-a-person"])
    roster.seed(ISS, ["Practitioner/coder-1"])  # a second app instance seeds the same
    assert [c.label for c in roster.coders(ISS)] == ["Practitioner/coder-1"]
    assert roster.unnamed(ISS) == ["Practitioner/coder-1"]
    roster.record(ISS, "Practitioner/coder-1", "Casey Coder", "list")
    roster.record(ISS, "Practitioner/coder-2", "Robin Role", "role")
    roster.record(ISS, "Practitioner/coder-2", None, "role")  # a name is never forgotten
    roster.record("http://other.test/fhir", "Practitioner/x", "Sam Elsewhere", "list")
    assert [c.label for c in roster.coders(ISS)] == ["Casey Coder", "Robin Role"]
    assert roster.find(ISS, "Practitioner/x") is None
    assert roster.find(ISS, "Practitioner/coder-2").owner() == {
        "reference": "Practitioner/coder-2",
        "display": "Robin Role",
    }


def test_update_each_writes_each_task_under_its_own_if_match(tmp_path):
    store = TaskStore(f"sqlite:///{tmp_path}/t.sqlite")
    rng = random.Random(1)
    first, second = (store.create(task(n, rng))[0] for n in (1, 2))
    store.update(second.task["id"], dict(second.task, status="in-progress"), if_match=1)
    written = store.update_each(
        [
            (first.task["id"], dict(first.task, status="completed"), 1),
            (second.task["id"], dict(second.task, status="completed"), 1),  # stale now
        ]
    )
    assert written[first.task["id"]].version == 2 and written[second.task["id"]] is None
    assert store.read(first.task["id"]).task["status"] == "completed"
    assert store.read(second.task["id"]).task["status"] == "in-progress"
    assert set(store.read_each([first.task["id"], "nope"])) == {first.task["id"]}
