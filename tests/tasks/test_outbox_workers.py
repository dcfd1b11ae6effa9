"""Two workers delivering one outbox at once: every write is sent exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

from plugin.tasks.outbox import Outbox


def deliver_concurrently(url: str, writes: int = 40) -> Counter:
    first = Outbox(url, base_delay=0)
    for n in range(writes):
        first.enqueue("https://ehr.test/fhir", f"task-{n}", {"n": n})
    sent: Counter = Counter()
    lock = threading.Lock()

    def send(target: str, task: dict) -> None:
        time.sleep(0.002)  # a network round trip, long enough for the other worker to race
        with lock:
            sent[task["n"]] += 1

    workers = [Outbox(url, base_delay=0) for _ in range(2)]
    threads = [threading.Thread(target=w.deliver, args=(send,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.pending() == 0
    return sent


def test_two_workers_deliver_each_write_exactly_once(tmp_path):
    sent = deliver_concurrently(f"sqlite:///{tmp_path}/outbox.sqlite")
    assert sorted(sent) == list(range(40))
    assert set(sent.values()) == {1}


def test_a_newer_write_during_a_send_is_still_delivered(tmp_path):
    box = Outbox(f"sqlite:///{tmp_path}/o.sqlite", base_delay=0)
    box.enqueue("t", "task-1", {"v": 1})
    seen = []

    def send(target, task):
        seen.append(task["v"])
        if task["v"] == 1:
            box.enqueue("t", "task-1", {"v": 2})  # the Task changed while v1 was in flight

    box.deliver(send)
    assert box.pending() == 1  # v2 is not marked delivered by the send of v1
    box.deliver(send)
    assert seen == [1, 2] and box.pending() == 0
