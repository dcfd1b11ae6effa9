"""A durable outbox for Task writes to outside FHIR servers: nothing is lost while one is down.

Each write is stored first (SQLite by default), then delivered; a failed delivery stays with
its error and is retried with exponential backoff. Delivery uses conditional create on the
Task's identifier, so a retry after a lost response still leaves exactly one Task.

Several processes (server workers) may deliver at once: each write is claimed first by one
conditional UPDATE that pushes its next attempt past a lease, so only one process sends it;
a process that dies mid-send leaves the write to be retried when the lease runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import sqlalchemy as sa

from plugin import schema
from plugin.db import make_engine

meta = sa.MetaData()
outbox = sa.Table(
    "outbox",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("identifier", sa.String(300), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt", sa.Float, nullable=False, default=0.0),
    sa.Column("last_error", sa.String(500)),
    sa.Column("delivered_at", sa.Float),
    sa.UniqueConstraint("target", "identifier", "delivered_at", name="one_pending_per_task"),
)

Sender = Callable[[str, dict], None]  # raises on failure


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    pending: int


class Outbox:
    def __init__(
        self,
        url: str = "sqlite://",
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        clock: Callable[[], float] = time.time,
        lease: float = 300.0,
    ) -> None:
        self.engine = make_engine(url)
        schema.prepare(self.engine)
        self.base_delay, self.max_delay, self.clock = base_delay, max_delay, clock
        self.lease = lease

    def enqueue(self, target: str, identifier: str, task: dict) -> None:
        """Store a write; a newer write of the same Task replaces one still pending."""
        body = orjson.dumps(task)
        with self.engine.begin() as conn:
            pending = conn.execute(
                sa.select(outbox.c.id).where(
                    outbox.c.target == target,
                    outbox.c.identifier == identifier,
                    outbox.c.delivered_at.is_(None),
                )
            ).first()
            if pending:
                conn.execute(
                    outbox.update()
                    .where(outbox.c.id == pending.id)
                    .values(body=body, next_attempt=0.0)
                )
            else:
                conn.execute(
                    outbox.insert().values(
                        target=target,
                        identifier=identifier,
                        body=body,
                        attempts=0,
                        next_attempt=0.0,
                    )
                )

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(outbox.c.delivered_at.is_(None))
                ).scalar()
                or 0
            )

    def deliver(self, send: Sender, limit: int = 100) -> DeliveryReport:
        """Try every due write once; the error text kept is the sender's, never the Task."""
        now = self.clock()
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(outbox)
                .where(outbox.c.delivered_at.is_(None), outbox.c.next_attempt <= now)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        delivered = failed = 0
        for row in due:
            claimed = now + self.lease
            with self.engine.begin() as conn:
                won = conn.execute(
                    outbox.update()
                    .where(
                        outbox.c.id == row.id,
                        outbox.c.delivered_at.is_(None),
                        outbox.c.next_attempt == row.next_attempt,
                    )
                    .values(next_attempt=claimed)
                ).rowcount
            if won != 1:
                continue  # another process claimed it, or a newer write replaced it
            # The row is ours while next_attempt is our claim; a newer write (enqueue sets it
            # back to 0) must not be marked delivered by this send of the older body.
            ours = (outbox.c.id == row.id, outbox.c.next_attempt == claimed)
            try:
                send(row.target, orjson.loads(row.body))
            except Exception as exc:  # noqa: BLE001 - any failure keeps the write for a retry
                failed += 1
                delay = min(self.max_delay, self.base_delay * 2**row.attempts)
                with self.engine.begin() as conn:
                    conn.execute(
                        outbox.update()
                        .where(*ours)
                        .values(
                            attempts=row.attempts + 1,
                            next_attempt=now + delay,
                            last_error=f"{type(exc).__name__}: {exc}"[:500],
                        )
                    )
                continue
            delivered += 1
            with self.engine.begin() as conn:
                conn.execute(
                    outbox.update()
                    .where(*ours)
                    .values(attempts=row.attempts + 1, delivered_at=self.clock(), last_error=None)
                )
        return DeliveryReport(delivered, failed, self.pending())
