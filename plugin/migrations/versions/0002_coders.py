"""The coders of each EHR (issue 24): whom a review Task may be assigned to, by name.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coders",
        sa.Column("issuer", sa.String(300), primary_key=True),
        sa.Column("reference", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("seen", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("coders")
