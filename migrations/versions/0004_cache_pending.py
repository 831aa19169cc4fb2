"""cache_pending: generation bumps a host could not apply, seen by every host.

A row per failed (or unreplicated) bump, keyed by the app's CACHE_KEY_PREFIX;
any worker of any host that next reaches Redis replays the rows and deletes
them by id. No trigger: the application maintains it.

Revision ID: 0004_cache_pending
Revises: 0003_auth_hardening
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_cache_pending"
down_revision = "0003_auth_hardening"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "cache_pending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=100), nullable=False),
        sa.Column("gen_key", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_pending")),
    )
    op.create_index("ix_cache_pending_prefix", "cache_pending", ["prefix"], unique=False)


def downgrade():
    op.drop_index("ix_cache_pending_prefix", table_name="cache_pending")
    op.drop_table("cache_pending")
