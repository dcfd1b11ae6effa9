"""The Task store's tables: each Task's body and the columns its searches use; the coders."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("identifier", sa.String(300), nullable=False, unique=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("code", sa.String(200), nullable=False, index=True),
    sa.Column("owner", sa.String(200), index=True),
    sa.Column("patient", sa.String(200), index=True),
    sa.Column("encounter", sa.String(200), index=True),
    sa.Column("priority", sa.String(16)),
    sa.Column("rules", sa.String(2000), nullable=False, default=""),
    sa.Column("therapist", sa.String(200), index=True),
    sa.Column("payer", sa.String(200), index=True),
    sa.Column("service_date", sa.String(10), index=True),
    sa.Column("dollars_at_risk", sa.Float, nullable=False, default=0.0),
    sa.Column("authored_on", sa.String(40), nullable=False),
    # Who may see it, and what the queue shows and searches (captured at sign-off).
    sa.Column("issuer", sa.String(300), index=True),
    sa.Column("patient_name", sa.String(200)),
    sa.Column("patient_mrn", sa.String(64)),
    sa.Column("therapist_name", sa.String(200), index=True),
    sa.Column("reopened", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("last_updated", sa.String(40), nullable=False, index=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # Covers every column the coder queue filters, sorts and offers as choices, so its queries
    # never read the wide rows (each carries the Task's body).
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
# Each EHR's coders, whom a Task may be assigned to (plugin.tasks.roster; migration 0002).
coders = sa.Table(
    "coders",
    metadata,
    sa.Column("issuer", sa.String(300), primary_key=True),
    sa.Column("reference", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("source", sa.String(16), nullable=False),  # "list" or "role"
    sa.Column("seen", sa.String(40), nullable=False),
)
