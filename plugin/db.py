"""One way to open a SQLAlchemy engine for the app's stores (tasks, outbox, sessions)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; an in-memory SQLite database is shared by every thread (one
    connection), since each new connection would otherwise see a new, empty database."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        return sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    if url.startswith("sqlite:"):
        return sa.create_engine(url, connect_args={"check_same_thread": False})
    return sa.create_engine(url, pool_pre_ping=True)
