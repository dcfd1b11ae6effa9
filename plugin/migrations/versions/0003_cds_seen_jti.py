"""The CDS Hooks JWT ids already used, shared by every worker (second security review).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_seen_jti",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires", sa.Float, nullable=False),
    )
    op.create_index("ix_cds_seen_jti_expires", "cds_seen_jti", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_cds_seen_jti_expires", table_name="cds_seen_jti")
    op.drop_table("cds_seen_jti")
