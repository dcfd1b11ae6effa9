"""One way to open a SQLAlchemy engine for the app's stores (tasks, outbox, sessions)."""

from __future__ import annotations

import atexit
import os
import tempfile

import sqlalchemy as sa

MEMORY_URLS = ("sqlite://", "sqlite:///:memory:")


def _scratch_file() -> str:
    handle, path = tempfile.mkstemp(prefix="unitguard-", suffix=".sqlite")
    os.close(handle)
    atexit.register(lambda: os.path.exists(path) and os.remove(path))
    return path


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``. An in-memory SQLite URL gets a private temporary file instead:
    an in-memory database lives in one connection, and threads sharing one connection
    interleave their transactions (sessions were lost under 20 concurrent users)."""
    if url in MEMORY_URLS:
        url = f"sqlite:///{_scratch_file()}"
    if url.startswith("sqlite:"):
        return sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    return sa.create_engine(url, pool_pre_ping=True)
