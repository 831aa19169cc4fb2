"""cache_pending becomes the transactional outbox: every shared-state effect, not only failed bumps.

A write's generation bumps and a logout's revocations are inserted here in the
writer's own transaction (a rollback discards them), applied to Redis after
COMMIT and deleted; whatever its process could not apply, any process of any
host applies (the drain, electro_isla/cache/outbox.py).

- `kind`: "bump" (`target` is a generation key; every existing row) or
  "revoke" (`target` is a logged-out token's jti, refused until `expires_at`).
- `gen_key` is renamed `target`.
- PostgreSQL: `cache_pending_done(ids)` deletes applied rows and lets that one
  transaction commit without waiting for the disk (`synchronous_commit off`):
  a delete lost in a crash only means one more, harmless, apply. One round
  trip, no second fsync for the writer after its own COMMIT.
No trigger: the application maintains the table. Downgrade drops revocation rows
(the old code cannot apply them; `revoked_tokens` still holds every one).

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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION cache_pending_done(done integer[]) RETURNS void
            LANGUAGE sql AS $$
              SELECT set_config('synchronous_commit', 'off', true);
              DELETE FROM cache_pending WHERE id = ANY(done);
            $$
            """
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION cache_pending_done(integer[])")
    op.execute("DELETE FROM cache_pending WHERE kind <> 'bump'")
    with op.batch_alter_table("cache_pending") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("kind")
        batch.alter_column("target", new_column_name="gen_key", existing_type=sa.String(400))
