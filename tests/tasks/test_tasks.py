"""Coding-review Tasks: the FHIR resource, the app's Task store, the durable outbox."""

from __future__ import annotations

import pytest

from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder, clean_visit
from plugin.tasks.build import IDENTIFIER_SYSTEM, review_task, task_identifier, task_input
from plugin.tasks.outbox import Outbox
from plugin.tasks.store import TaskNotFound, TaskStore, VersionConflict

ISS = "http://ehr.test/fhir"


def defective_task(**kwargs):
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 3)
    return review_task(
        review_bundle(b.bundle()),
        issuer=ISS,
        owner={"reference": "Organization/coding-team"},
        **kwargs,
    )


def test_task_carries_the_contract_fields():
    task = defective_task()
    assert (task["status"], task["intent"], task["priority"]) == ("requested", "order", "asap")
    assert task["for"] == {"reference": "Patient/pat-1"}
    assert task["encounter"] == {"reference": "Encounter/enc-1"}
    assert task["focus"] == {"reference": "Claim/claim-1"}
    assert task["identifier"][0] == {
        "system": IDENTIFIER_SYSTEM,
        "value": task_identifier(ISS, "Encounter/enc-1"),
    }
    rules = {c["code"] for i in task["input"] for c in i["type"]["coding"]}
    assert {"units-exceed-time", "doc-unsigned", "dollars-at-risk"} <= rules
    money = next(i["valueMoney"] for i in task["input"] if "valueMoney" in i)
    # An unsigned note denies the whole visit (contract §2b): the $105 line, counted once.
    assert money == {"value": 105.0, "currency": "USD"}
    assert task["description"].startswith("unitguard unsupported: 2 error(s)")


def test_clean_visit_task_is_routine_and_focuses_the_claim():
    task = review_task(review_bundle(clean_visit().bundle()), issuer=ISS)
    assert task["priority"] == "routine" and "owner" not in task


def test_identifier_is_per_issuer_and_encounter():
    assert task_identifier(ISS, "Encounter/a") == task_identifier(ISS, "Encounter/a")
    assert task_identifier(ISS, "Encounter/a") != task_identifier(ISS, "Encounter/b")
    assert task_identifier("http://other.test/fhir", "Encounter/a") != task_identifier(
        ISS, "Encounter/a"
    )


@pytest.fixture
def store():
    return TaskStore("sqlite://")


def test_store_conditional_create_is_idempotent(store):
    first, created = store.create(defective_task())
    again, created_again = store.create(defective_task())
    assert created and not created_again
    assert again.task["id"] == first.task["id"]
    assert store.search()[1] == 1


def test_store_update_with_if_match_and_conflict(store):
    stored, _ = store.create(defective_task())
    task_id = stored.task["id"]
    updated = store.update(task_id, dict(stored.task, status="completed"), if_match=1)
    assert updated.version == 2 and updated.etag == 'W/"2"'
    assert updated.task["meta"]["versionId"] == "2"
    with pytest.raises(VersionConflict, match="someone else changed it"):
        store.update(task_id, dict(stored.task, status="rejected"), if_match=1)
    assert store.read(task_id).task["status"] == "completed"
    with pytest.raises(TaskNotFound):
        store.read("nope")


def test_store_search_filters_and_sorts(store):
    store.create(defective_task())
    clean = review_task(review_bundle(clean_visit().bundle()), issuer="http://b.test/fhir")
    store.create(clean)
    assert store.search(rule="doc-unsigned")[1] == 1
    assert store.search(rule="doc-unsig")[1] == 0
    assert store.search(status=["requested"], code="coding-review")[1] == 2
    assert store.search(owner="Organization/coding-team")[1] == 1
    page, total = store.search(sort="-dollars-at-risk")
    assert total == 2 and task_input(page[0].task, "dollars-at-risk")["value"] == 105.0


class FlakyServer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tasks: dict[str, dict] = {}
        self.calls = 0

    def send(self, target: str, task: dict) -> None:
        """Conditional create: a second delivery of the same identifier changes nothing."""
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("FHIR server unavailable")
        self.tasks.setdefault(task["identifier"][0]["value"], task)


def test_outbox_keeps_writes_until_the_server_is_back(tmp_path):
    clock = [1000.0]
    box = Outbox(f"sqlite:///{tmp_path / 'outbox.sqlite'}", base_delay=10, clock=lambda: clock[0])
    task = defective_task()
    box.enqueue("http://ehr.test/fhir", task["identifier"][0]["value"], task)
    server = FlakyServer(failures=2)
    assert box.deliver(server.send).failed == 1
    assert box.deliver(server.send).delivered == 0  # backing off: not due yet
    clock[0] += 10
    assert box.deliver(server.send).failed == 1
    clock[0] += 20
    # A restart of the app: a new Outbox on the same file still holds the write.
    reopened = Outbox(f"sqlite:///{tmp_path / 'outbox.sqlite'}", clock=lambda: clock[0])
    report = reopened.deliver(server.send)
    assert (report.delivered, report.pending) == (1, 0)
    assert len(server.tasks) == 1 and server.calls == 3
    assert reopened.deliver(server.send).delivered == 0  # delivered exactly once


def test_outbox_keeps_only_the_newest_pending_write_per_task(tmp_path):
    box = Outbox(f"sqlite:///{tmp_path / 'o.sqlite'}")
    task = defective_task()
    ident = task["identifier"][0]["value"]
    box.enqueue("t", ident, task)
    box.enqueue("t", ident, dict(task, status="completed"))
    seen = []
    box.deliver(lambda target, t: seen.append(t["status"]))
    assert seen == ["completed"]


def test_queue_filters_by_therapist_payer_and_date(store):
    store.create(defective_task())
    assert store.search(therapist="Practitioner/pt")[1] == 1
    assert store.search(therapist="Practitioner/ot")[1] == 0
    assert store.search(payer="Medicare Part B")[1] == 1
    assert store.search(date_from="2026-03-01", date_to="2026-03-31")[1] == 1
    assert store.search(date_from="2026-04-01")[1] == 0


def test_delivery_loop_retries_in_the_background(tmp_path):
    import threading

    from plugin.web.app import AppServices
    from plugin.web.settings import Settings

    box = Outbox(f"sqlite:///{tmp_path / 'o.sqlite'}", base_delay=0)
    task = defective_task()
    box.enqueue("t", task["identifier"][0]["value"], task)
    delivered = threading.Event()
    services = AppServices(
        Settings(testing=True),
        store=None,
        sessions=None,
        visits=None,
        outbox=box,
        sender=lambda target, t: delivered.set(),
    )
    stop = services.start_delivery_loop(every=0.05)
    try:
        assert delivered.wait(5)
        for _ in range(100):  # the row is marked delivered just after the send returns
            if box.pending() == 0:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
    assert box.pending() == 0
