"""The migrations on PostgreSQL: they build the schema the code defines, a new database is made
at start, and a database from before migrations is refused, then upgraded keeping its Tasks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from plugin import schema
from plugin.db import make_engine
from plugin.tasks.store import TaskStore, tasks
from plugin.web import sessions
from tests.deploy.test_schema import differences


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
    engine = make_engine(pg_url)
    old.create_all(engine)
    sessions.meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tasks VALUES ('a', 1, 's|v', 'requested', 'c', NULL, NULL, NULL, "
                "NULL, '', NULL, NULL, NULL, 0, '', '', '{}')"
            )
        )
    with pytest.raises(schema.SchemaError, match="made before schema migrations"):
        TaskStore(pg_url)
    assert schema.upgrade(engine) == (None, schema.head())
    assert differences(engine) == []
    assert TaskStore(pg_url).count() == 1
