"""Auth hardening: revoked access tokens in the database, one case rule for usuarios.

- `revoked_tokens (jti, expires_at)`: every logged-out access token until it
  would have expired. Redis answers the per-request revocation check; this
  table answers it while Redis is unreachable. Rows past `expires_at` are
  purged by the application (a bounded batch at every logout), hence the index.
- Unique indexes on `lower(username)` and `lower(email)`: one account per
  name whatever the case, so a case-insensitive login finds exactly one
  usuario. Emails are stored lower-cased from now on; existing ones are
  lower-cased here. If two existing usuarios differ only in case the upgrade
  stops and names them: which one keeps the name is a human decision.
  Downgrade drops the table and the indexes; emails stay lower-cased.

Revision ID: 0003_auth_hardening
Revises: 0002_estadisticas_rollups
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_auth_hardening"
down_revision = "0002_estadisticas_rollups"
branch_labels = None
depends_on = None


def _refuse_case_duplicates() -> None:
    conn = op.get_bind()
    for column in ("username", "email"):
        clashes = conn.execute(
            sa.text(
                f"SELECT lower({column}) FROM usuarios GROUP BY lower({column}) "  # noqa: S608
                "HAVING count(*) > 1 ORDER BY 1 LIMIT 20"
            )
        ).scalars().all()
        if clashes:
            raise RuntimeError(
                f"usuarios whose {column} differs only in case: {', '.join(clashes)}; "
                "rename or merge them, then upgrade again"
            )


def upgrade():
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])

    _refuse_case_duplicates()
    op.execute("UPDATE usuarios SET email = lower(email) WHERE email <> lower(email)")
    op.create_index(
        "uq_usuarios_lower_username", "usuarios", [sa.text("lower(username)")], unique=True
    )
    op.create_index("uq_usuarios_lower_email", "usuarios", [sa.text("lower(email)")], unique=True)


def downgrade():
    op.drop_index("uq_usuarios_lower_email", table_name="usuarios")
    op.drop_index("uq_usuarios_lower_username", table_name="usuarios")
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
