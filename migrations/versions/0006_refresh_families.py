"""Refresh-token families: one row per login, rotated in place.

A login starts a family (`family`, a random id carried inside the token) at
`sequence` 0; each refresh replaces the row's hash with the next member's and
increments `sequence`. So refreshing a thousand times leaves one row, and a
token of the family with a lower sequence than the row's is a reuse (the
application then revokes every refresh token of the usuario).

Upgrade: spent rows (the old one-row-per-rotation scheme) are deleted, live
ones become families of their own (a random id) at sequence 0, `used_at` goes. A spent token
presented after the upgrade is then refused as unknown (401) instead of
revoking the usuario's tokens. Rows past `expires_at` are purged by the
application in bounded batches, hence the index.

Revision ID: 0006_refresh_families
Revises: 0004_cache_pending
Create Date: 2026-12-04
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0006_refresh_families"
down_revision = "0005_outbox"
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM refresh_tokens WHERE used_at IS NOT NULL"))
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("family", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"))
    ids = conn.execute(sa.text("SELECT id FROM refresh_tokens")).scalars().all()
    if ids:
        conn.execute(
            sa.text("UPDATE refresh_tokens SET family = :family WHERE id = :id"),
            [{"id": i, "family": uuid.uuid4().hex} for i in ids],
        )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.alter_column("family", existing_type=sa.String(length=32), nullable=False)
        batch.create_index("uq_refresh_tokens_family", ["family"], unique=True)
        batch.create_index("ix_refresh_tokens_expires_at", ["expires_at"])
        batch.drop_column("used_at")


def downgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_index("ix_refresh_tokens_expires_at")
        batch.drop_index("uq_refresh_tokens_family")
        batch.drop_column("sequence")
        batch.drop_column("family")
