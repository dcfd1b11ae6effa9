"""Alembic's environment: always run by ``plugin.schema`` with a connection it opened (the
connection arrives in ``config.attributes``), never from an alembic.ini."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it, which Alembic's batch mode does.
context.configure(connection=connection, render_as_batch=True, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
