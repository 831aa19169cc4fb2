"""Pictures that are neither an http(s) URL nor a path are cleared.

Since commit 039f990 the API refuses an imagen_url that is not empty, an
http(s) URL or a path from the site's root (catalogo/schemas.py IMAGEN_URL): a
`javascript:` or `data:` value would reach a shop front as an image source or a
link. Rows written before kept whatever they had. This sets those to '' (the
API's "no picture") and moves their updated_at, and logs each producto's id and
old value (as repr) so an operator can put a proper URL back.

The expression is a frozen copy of IMAGEN_URL as of this revision: the
migration must keep doing what it did when the app's rule changes later.

Cached producto bodies keep the old value until their TTL: when this logs any
row, run `flask cache-clear` after the upgrade (a migration cannot reach the
cache; README, "a write that bypasses the app").

The downgrade leaves them cleared (the old values are in the upgrade's log).

Revision ID: 0013_imagen_url_valida
Revises: 0012_usernames_nfkc
Create Date: 2026-12-06
"""

import logging
import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0013_imagen_url_valida"
down_revision = "0012_usernames_nfkc"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

IMAGEN_URL = re.compile(
    r"(?:/[^\u0000-\u0020]*|[Hh][Tt][Tt][Pp][Ss]?://[^\u0000-\u0020/?#]+[^\u0000-\u0020]*)?"
)


def upgrade():
    clear_refused(IMAGEN_URL, "not an http(s) URL or a path")


def clear_refused(rule: re.Pattern, why: str) -> None:
    """Set every imagen_url `rule` does not match to '' (0014 calls it with its own)."""
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, imagen_url FROM productos ORDER BY id"))
    cleared = [(id_, url) for id_, url in rows if not rule.fullmatch(url)]
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # stored as UTC without an offset (db_types.UTCDateTime)
    update = sa.text(
        "UPDATE productos SET imagen_url = '', updated_at = :now WHERE id = :id"
    ).bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True)))
    for id_, url in cleared:
        log.warning("producto %s: imagen_url %r cleared (%s)", id_, url, why)
        conn.execute(update, {"now": now, "id": id_})
    if cleared:
        log.warning(
            "imagen_url cleared on %d productos: run `flask cache-clear` "
            "so no cached body shows them",
            len(cleared),
        )


def downgrade():
    pass
