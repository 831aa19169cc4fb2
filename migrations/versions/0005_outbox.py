"""cache_pending becomes the transactional outbox: every shared-state effect, not only failed bumps.

A write's generation bumps and a logout's revocations are inserted here in the
writer's own transaction (a rollback discards them), applied to Redis after
COMMIT and deleted; whatever its process could not apply, any process of any
host applies (the drain, electro_isla/cache/outbox.py).

- `kind`: "bump" (`target` is a generation key; every existing row) or
  "revoke" (`target` is a logged-out token's jti, refused until `expires_at`).
- `gen_key` is renamed `target`.
No trigger: the application maintains it. Downgrade drops revocation rows (the
old code cannot apply them; `revoked_tokens` still holds every one of them).

Revision ID: 0005_outbox
Revises: 0004_cache_pending
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox"
down_revision = "0004_cache_pending"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cache_pending") as batch:
        batch.alter_column("gen_key", new_column_name="target", existing_type=sa.String(400))
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="bump")
        )
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.execute("DELETE FROM cache_pending WHERE kind <> 'bump'")
    with op.batch_alter_table("cache_pending") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("kind")
        batch.alter_column("target", new_column_name="gen_key", existing_type=sa.String(400))
