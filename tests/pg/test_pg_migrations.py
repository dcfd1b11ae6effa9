"""The migrations on PostgreSQL: they build the schema the code defines, a new database is made
at start, and a database from before migrations is refused, then upgraded keeping its Tasks."""

from __future__ import annotations

import pytest

from plugin import schema
from plugin.db import make_engine
from plugin.tasks.store import TaskStore
from tests.deploy.test_schema import differences, make_legacy


def test_the_migrations_build_the_schema_the_code_defines_on_postgresql(pg_url):
    engine = make_engine(pg_url)
    assert schema.upgrade(engine) == (None, schema.head())
    assert differences(engine) == []


def test_a_new_postgresql_database_is_made_at_the_newest_revision(pg_url):
    TaskStore(pg_url)
    engine = make_engine(pg_url)
    assert schema.state(engine).revision == schema.head()
    assert differences(engine) == []


def test_a_postgresql_database_from_before_migrations_is_upgraded(pg_url):
    engine = make_engine(pg_url)
    make_legacy(engine)
    with pytest.raises(schema.SchemaError, match="made before schema migrations"):
        TaskStore(pg_url)
    assert schema.upgrade(engine) == (None, schema.head())
    assert differences(engine) == []
    assert TaskStore(pg_url).count() == 1
