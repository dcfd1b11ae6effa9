"""The stores' schema under Alembic: the migrations build exactly what the code defines, a new
database is made at start, an old one is refused until `unitguard db upgrade` brings it up."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

import plugin
import smart_launch
from plugin import schema
from plugin.cli import main
from plugin.db import make_engine
from plugin.tasks.store import TaskStore
from plugin.web.sessions import SessionStore


def differences(engine: sa.Engine) -> list:
    found = []
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        for meta in schema.metadata():
            found += [
                d
                for d in compare_metadata(context, meta)
                # each compare sees the other stores' tables as extra: only this one's count
                if not (d[0] == "remove_table" and d[1].name not in meta.tables)
                and not (d[0] == "remove_index" and d[1].table.name not in meta.tables)
            ]
    return found


def test_the_migrations_build_the_schema_the_code_defines(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/migrated.sqlite")
    assert schema.upgrade(engine) == (None, schema.head())
    assert differences(engine) == []
    assert set(sa.inspect(engine).get_table_names()) == schema.table_names() | {"alembic_version"}


def test_a_new_database_is_made_at_the_newest_revision(tmp_path):
    url = f"sqlite:///{tmp_path}/new.sqlite"
    TaskStore(url)
    engine = make_engine(url)
    assert schema.state(engine).revision == schema.head()
    assert differences(engine) == []


def test_every_table_of_the_app_is_under_migration():
    """A table defined anywhere in plugin/ or smart_launch/ but missing from schema.metadata()
    would be made by no migration: add it there and write a revision for it."""
    for package in (plugin, smart_launch):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations" not in module.name:
                importlib.import_module(module.name)
    known = set(map(id, schema.metadata()))
    for name, module in list(sys.modules.items()):
        if not name.startswith(("plugin.", "smart_launch.")) or ".migrations" in name:
            continue
        for value in vars(module).values():
            if isinstance(value, sa.MetaData) and value.tables:
                assert id(value) in known, f"{name} defines tables outside schema.metadata()"


def legacy_database(path) -> str:
    """A SQLite database as the stores made it before migrations (``make_legacy``)."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    make_legacy(engine)
    engine.dispose()
    return url


def make_legacy(engine: sa.Engine) -> None:
    """The tables as the stores made them before migrations (each store's create_all), with one
    Task: no revision, and the Task store as first released, without its later queue columns."""
    from plugin.tasks.store import tasks
    from plugin.web import sessions

    later = ("issuer", "patient_name", "patient_mrn", "therapist_name", "reopened")
    old = sa.MetaData()
    sa.Table(
        "tasks",
        old,
        *(
            sa.Column(
                c.name,
                c.type,
                primary_key=c.primary_key,
                nullable=c.nullable,
                unique=c.unique,
                index=c.index,
            )
            for c in tasks.c
            if c.name not in later
        ),
    )
    old.create_all(engine)
    sessions.meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tasks VALUES ('a', 1, 's|v', 'requested', 'c', NULL, NULL, NULL, "
                "NULL, '', NULL, NULL, NULL, 0, '', '', '{}')"
            )
        )


def test_an_old_database_is_refused_then_upgraded_keeping_its_tasks(tmp_path):
    url = legacy_database(tmp_path / "old.sqlite")
    with pytest.raises(schema.SchemaError) as refused:
        SessionStore(url)
    assert "made before schema migrations" in str(refused.value)
    assert "unitguard db upgrade" in str(refused.value)
    engine = make_engine(url)
    assert schema.upgrade(engine) == (None, schema.head())
    assert differences(engine) == []
    store = TaskStore(url)
    assert store.count() == 1 and store.read("a").version == 1
    assert schema.upgrade(engine) == (schema.head(), schema.head())  # a second run: nothing


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/newer.sqlite"
    engine = make_engine(url)
    schema.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(schema.versions.update().values(version_num="9999"))
    with pytest.raises(schema.SchemaError, match="does not know"):
        TaskStore(url)


def invoke(*args: str, env: dict):
    """The `unitguard` command in this process, its umask (serve and db set 0077) restored."""
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        return CliRunner().invoke(main, list(args), env=env)
    finally:
        os.umask(mask)


def test_db_status_and_upgrade_from_the_command_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    legacy_database(data / "unitguard.sqlite")
    env = {"UNITGUARD_DATA_DIR": str(data)}
    behind = invoke("db", "status", env=env)
    assert behind.exit_code == 1 and "unitguard db upgrade" in behind.stdout
    done = invoke("db", "upgrade", env=env)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip().endswith(f"schema (none) -> {schema.head()}")
    assert invoke("db", "upgrade", env=env).stdout.strip().endswith("already current")
    current = invoke("db", "status", env=env)
    assert current.exit_code == 0 and "(current)" in current.stdout
    assert oct((data / "unitguard.sqlite").stat().st_mode & 0o777) == "0o600"


def test_db_commands_need_a_database_named(tmp_path):
    env = {"UNITGUARD_DATA_DIR": "", "UNITGUARD_DATABASE_URL": ""}
    found = invoke("db", "upgrade", env=env)
    assert found.exit_code == 2
    assert found.stderr.strip().splitlines() == [
        "unitguard: set UNITGUARD_DATA_DIR (the SQLite database in that folder) or "
        "UNITGUARD_DATABASE_URL (e.g. PostgreSQL) to name the database"
    ]
