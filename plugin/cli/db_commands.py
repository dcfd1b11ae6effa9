"""``unitguard db``: the app's database (UNITGUARD_DATABASE_URL, or the SQLite file in
UNITGUARD_DATA_DIR): its schema revision, and the migrations that bring it up to date."""

from __future__ import annotations

import sys

import click

from plugin.cli.user_error import UserError
from plugin.errors import PluginError


def _engine():
    """The engine of the database the settings name; the data folder made or checked first."""
    from plugin.datadir import open_data_dir
    from plugin.db import make_engine
    from plugin.web.settings import Settings

    try:
        settings = Settings.from_env(testing=True)  # no secret key needed to migrate
        if not settings.data_dir and not settings.database_url:
            raise UserError(
                "set UNITGUARD_DATA_DIR (the SQLite database in that folder) or "
                "UNITGUARD_DATABASE_URL (e.g. PostgreSQL) to name the database",
                2,
            )
        if settings.data_dir:
            open_data_dir(settings.data_dir)
        return make_engine(settings.task_db)
    except PluginError as exc:
        raise UserError(str(exc), 2) from None


def _fail(exc: Exception) -> UserError:
    return UserError(f"the database cannot be read: {type(exc).__name__}: {exc}", 2)


@click.group()
def db() -> None:
    """The app's database: its schema revision and its migrations (back it up first)."""


@db.command()
def upgrade() -> None:
    """Bring the database to this version's schema (a new database is made). Stop `serve`
    and back the database up first; then start `serve` again."""
    from plugin import schema

    engine = _engine()
    where = schema.describe(engine)
    try:
        before, after = schema.upgrade(engine)
    except Exception as exc:  # noqa: BLE001 - a driver's or Alembic's error, in one line
        raise _fail(exc) from None
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"database {where}: schema {after}, already current")
    else:
        click.echo(f"database {where}: schema {before or '(none)'} -> {after}")


@db.command()
def status() -> None:
    """Print the database's schema revision; exit 0 when current (or new), 1 when it needs
    `unitguard db upgrade`, 2 when it cannot be read."""
    from plugin import schema

    engine = _engine()
    where = schema.describe(engine)
    try:
        found = schema.state(engine)
    except Exception as exc:  # noqa: BLE001
        raise _fail(exc) from None
    finally:
        engine.dispose()
    if found.empty:
        click.echo(f"database {where}: new (serve makes its tables at schema {schema.head()})")
    elif found.current:
        click.echo(f"database {where}: schema {found.revision} (current)")
    else:
        click.echo(schema.problem(engine, found))
        sys.exit(1)
