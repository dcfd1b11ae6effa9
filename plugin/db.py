"""One way to open a SQLAlchemy engine for the app's stores (tasks, outbox, sessions)."""

from __future__ import annotations

import atexit
import os
import tempfile
import weakref

import sqlalchemy as sa

MEMORY_URLS = ("sqlite://", "sqlite:///:memory:")
_engines: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
# Server databases' engines are kept until disposed: an engine dropped with connections in its
# pool would leave them to the garbage collector, open (psycopg warns), instead of closing them.
_server_engines: list[sa.Engine] = []


def _scratch_file() -> str:
    handle, path = tempfile.mkstemp(prefix="unitguard-", suffix=".sqlite")
    os.close(handle)
    owner = os.getpid()  # a forked server worker must not delete the file its siblings share
    atexit.register(lambda: os.getpid() == owner and os.path.exists(path) and os.remove(path))
    return path


def dispose_engines() -> None:
    """Close every pooled connection (they reopen on next use)."""
    for engine in list(_engines):
        engine.dispose()
    _server_engines.clear()


def _forget_inherited_connections() -> None:
    """In a forked child (a gunicorn worker), never reuse the parent's connections: two
    processes on one connection corrupt each other's transactions. ``close=False``: closing
    one here would end the parent's session on the server."""
    for engine in list(_engines):
        engine.dispose(close=False)


# Before a fork the parent closes its idle pooled connections, so a child inherits none that it
# could use or, by dropping it, close under the parent (a gunicorn master forks only at start
# and to replace a worker, and serves no requests itself).
os.register_at_fork(before=dispose_engines, after_in_child=_forget_inherited_connections)


def _overwrite_deleted_rows(dbapi_connection, _record) -> None:
    """SQLite keeps a deleted row's bytes in the file until the page is reused; with
    secure_delete it overwrites them, so an ended session's tokens are gone from the disk."""
    dbapi_connection.execute("PRAGMA secure_delete = ON")


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``. An in-memory SQLite URL gets a private temporary file instead:
    an in-memory database lives in one connection, and threads sharing one connection
    interleave their transactions (sessions were lost under 20 concurrent users). The file is
    made before any server worker is forked, so the workers share it."""
    if url in MEMORY_URLS:
        url = f"sqlite:///{_scratch_file()}"
    if url.startswith("sqlite:"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _overwrite_deleted_rows)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
        _server_engines.append(engine)
    _engines.add(engine)
    return engine
