"""Baseline: the stores' tables as they stood when migrations began (December 2026).

Written to be safe on a database made before migrations existed (the stores then made their own
tables, and the Task store added its queue columns itself): every table, column and index is
created only where it is missing, so ``unitguard db upgrade`` brings such a database to this
revision without touching what it holds.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

meta = sa.MetaData()
tasks = sa.Table(
    "tasks",
    meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("identifier", sa.String(300), nullable=False, unique=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("code", sa.String(200), nullable=False, index=True),
    sa.Column("owner", sa.String(200), index=True),
    sa.Column("patient", sa.String(200), index=True),
    sa.Column("encounter", sa.String(200), index=True),
    sa.Column("priority", sa.String(16)),
    sa.Column("rules", sa.String(2000), nullable=False),
    sa.Column("therapist", sa.String(200), index=True),
    sa.Column("payer", sa.String(200), index=True),
    sa.Column("service_date", sa.String(10), index=True),
    sa.Column("dollars_at_risk", sa.Float, nullable=False),
    sa.Column("authored_on", sa.String(40), nullable=False),
    sa.Column("issuer", sa.String(300), index=True),
    sa.Column("patient_name", sa.String(200)),
    sa.Column("patient_mrn", sa.String(64)),
    sa.Column("therapist_name", sa.String(200), index=True),
    sa.Column("reopened", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_updated", sa.String(40), nullable=False, index=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Index(
        "ix_tasks_queue",
        "issuer",
        "status",
        "dollars_at_risk",
        "service_date",
        "authored_on",
        "therapist_name",
        "payer",
        "owner",
        "reopened",
        "rules",
        "patient_name",
        "patient_mrn",
        "id",
    ),
)
# The Task store's columns added after its first release (the store used to add them itself).
LATER_TASK_COLUMNS = {
    "issuer": lambda: sa.Column("issuer", sa.String(300)),
    "patient_name": lambda: sa.Column("patient_name", sa.String(200)),
    "patient_mrn": lambda: sa.Column("patient_mrn", sa.String(64)),
    "therapist_name": lambda: sa.Column("therapist_name", sa.String(200)),
    "reopened": lambda: sa.Column(
        "reopened", sa.Boolean, nullable=False, server_default=sa.false()
    ),
}
sa.Table(
    "outbox",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("identifier", sa.String(300), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt", sa.Float, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("delivered_at", sa.Float),
    sa.UniqueConstraint("target", "identifier", "delivered_at", name="one_pending_per_task"),
)
sa.Table(
    "sessions",
    meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("expires", sa.Float, nullable=False, index=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
sa.Table(
    "launch_state",
    meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
)
sa.Table(
    "rate_buckets",
    meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("last", sa.Float, nullable=False, index=True),
)
sa.Table(
    "visit_reread_marks",
    meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
)


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    if "tasks" in present:
        columns = {c["name"] for c in sa.inspect(bind).get_columns("tasks")}
        for name, column in LATER_TASK_COLUMNS.items():
            if name not in columns:
                op.add_column("tasks", column())
    for table in meta.sorted_tables:
        table.create(bind, checkfirst=True)
        for index in table.indexes:
            index.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(meta.sorted_tables):
        table.drop(bind, checkfirst=True)
