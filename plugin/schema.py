"""The app's database schema: which tables exist, which migration made them, and whether a
database is ready for this version of unitguard.

Every store (Tasks, outbox, sessions, launch states, rate-limit buckets, re-read marks) keeps its
tables in the one database ``UNITGUARD_DATABASE_URL`` (or ``UNITGUARD_DATA_DIR``) names. Their
definitions stay beside the code that uses them; ``METADATA`` lists them all. The migrations in
``plugin/migrations`` (Alembic) bring a database from any earlier revision to the newest
(``upgrade``, run by ``unitguard db upgrade``). A store opening a database calls ``prepare``:

- an empty database is made at the newest revision (``create_all`` and the revision stamped,
  Alembic's recipe for a fresh database; a test checks the migrations build the same schema);
- a database at the newest revision is used as it is;
- anything else is refused with one line saying what to do: a database made before migrations
  existed, or at an older revision (back it up, run ``unitguard db upgrade``), or at a revision
  this version does not know (a newer unitguard made it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa

from plugin.errors import PluginError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
# Alembic's own table, as Alembic makes it (one row: the database's revision).
versions = sa.Table(
    VERSION_TABLE,
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
_prepared: set[str] = set()
_lock = threading.Lock()


class SchemaError(PluginError):
    """The database's schema does not match this version; the message says what to run."""


def metadata() -> tuple[sa.MetaData, ...]:
    """Every store's table definitions (imported here, not at the top: the stores import this
    module)."""
    from plugin.tasks import outbox, store
    from plugin.web import rate_limit, replay, sessions, visit_cache
    from smart_launch import state

    return (
        store.metadata,
        outbox.meta,
        sessions.meta,
        state._meta,
        rate_limit._meta,
        visit_cache._meta,
        replay._meta,
    )


def table_names() -> set[str]:
    return {name for meta in metadata() for name in meta.tables}


@cache
def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    """The newest revision this version of unitguard knows."""
    return _scripts().get_current_head()


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def describe(engine: sa.Engine) -> str:
    """The database for messages: a SQLite file's path, else the URL without its password."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return url.database or "(in memory)"
    return url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # the database's revision, None when it has none
    empty: bool  # none of the app's tables and no revision: a new database

    @property
    def current(self) -> bool:
        return self.revision == head()


def state(engine: sa.Engine) -> SchemaState:
    with engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
        revision = None
        if VERSION_TABLE in present:
            revision = conn.execute(sa.select(versions.c.version_num)).scalar()
    return SchemaState(revision, revision is None and not present & table_names())


def problem(engine: sa.Engine, found: SchemaState) -> str | None:
    """What is wrong with a database that is neither empty nor current, in one line."""
    if found.empty or found.current:
        return None
    where = describe(engine)
    if found.revision is None:
        return (
            f"the database {where} was made before schema migrations: back it up, then run "
            "`unitguard db upgrade`"
        )
    if found.revision in known_revisions():
        return (
            f"the database {where} is at schema {found.revision}, this version needs {head()}: "
            "back it up, then run `unitguard db upgrade`"
        )
    return (
        f"the database {where} is at schema {found.revision}, which this version of unitguard "
        f"does not know (a newer version made it; this one needs {head()})"
    )


def _create(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # One transaction for every table and index (Python's sqlite3 would commit, and
            # sync to disk, after each), holding the write lock: a second process waits here.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        for meta in metadata():
            meta.create_all(conn)
        versions.create(conn, checkfirst=True)
        if conn.execute(sa.select(versions.c.version_num)).first() is None:
            conn.execute(versions.insert().values(version_num=head()))
        conn.commit()


def prepare(engine: sa.Engine) -> None:
    """Make a new database at the newest revision; accept a current one; refuse anything
    else (``SchemaError``). Checked once per database and process."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _prepared:
            return
        found = state(engine)
        if found.empty:
            _create(engine)
        elif (text := problem(engine, found)) is not None:
            raise SchemaError(text)
        _prepared.add(key)


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Run every migration the database lacks; returns (revision before, revision after).
    A new database is made by the migrations themselves."""
    from alembic import command
    from alembic.config import Config

    before = state(engine).revision
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with _lock:
        _prepared.discard(engine.url.render_as_string(hide_password=False))
    return before, state(engine).revision
