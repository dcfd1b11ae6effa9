"""The queue's "next" on PostgreSQL, where NULL sorts last (SQLite sorts it first): the keyset
step walks the queue in exactly the order its search lists it."""

from __future__ import annotations

from plugin.tasks.store import TaskStore
from tests.tasks.test_queue_order import check_order


def test_next_walks_the_queue_in_its_listed_order_on_postgresql(pg_url):
    check_order(TaskStore(pg_url))
