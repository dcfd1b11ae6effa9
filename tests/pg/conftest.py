"""The stores against a real PostgreSQL server. `.ci/run` starts one (Debian's `postgresql`)
and exports UNITGUARD_TEST_PG_URL. Without that URL these tests fail under CI=true, and are
skipped only on a developer's machine without CI set (README says so)."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from plugin.db import dispose_engines

URL_VARIABLE = "UNITGUARD_TEST_PG_URL"


@pytest.fixture
def pg_url():
    """A fresh, empty database on the test server for one test (dropped afterwards)."""
    base = os.environ.get(URL_VARIABLE)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{URL_VARIABLE} is not set: .ci/run starts PostgreSQL and sets it")
        pytest.skip(f"no PostgreSQL: set {URL_VARIABLE} (CI sets it) to run the PostgreSQL tests")
    url = sa.make_url(base)
    name = f"ug_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()  # the stores' connections, before their database goes
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()
