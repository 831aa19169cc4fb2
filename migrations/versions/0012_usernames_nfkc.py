"""Usernames in NFKC form: what the app now stores and looks up (Django's rule).

The app normalises every username it stores or looks up with NFKC
(usuarios.models.normalize_username), so a row stored before in another form (a
full-width "ａna", the Kelvin sign for a K) would no longer be found by its own
name: no login by username, no `flask set-user`. This rewrites such rows in
place, in Python (SQLite has no normalize()). It stops, naming them, when a
rewritten name would equal another usuario's in lower(), as 0003 does for case
duplicates: rename or merge them, then upgrade again.

Each rewritten row is logged; cached bodies keep the old names until their TTL,
so when any was, run `flask cache-clear` after the upgrade.

The downgrade keeps the normalised names (as 0003 keeps lower-cased emails).

Revision ID: 0012_usernames_nfkc
Revises: 0011_tick_sin_secuencia
Create Date: 2026-12-06
"""

import logging
import unicodedata
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "0012_usernames_nfkc"
down_revision = "0011_tick_sin_secuencia"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    conn = op.get_bind()
    renamed = {}  # id -> its username in NFKC form, for the rows not in it yet
    for id_, username in conn.execute(sa.text("SELECT id, username FROM usuarios ORDER BY id")):
        nfkc = unicodedata.normalize("NFKC", username)
        if nfkc != username:
            renamed[id_] = nfkc
    twice = Counter(n.lower() for n in renamed.values())
    clashes = sorted(
        {
            username
            for id_, username in renamed.items()
            if twice[username.lower()] > 1
            or conn.execute(
                sa.text("SELECT 1 FROM usuarios WHERE lower(username) = lower(:u) AND id <> :id"),
                {"u": username, "id": id_},
            ).first()
        }
    )
    if clashes:
        raise RuntimeError(
            "usuarios whose username in NFKC form is another's: "
            f"{', '.join(clashes[:20])}; rename or merge them, then upgrade again"
        )
    for id_, username in renamed.items():
        log.warning("usuario %s: username rewritten in NFKC form as %r", id_, username)
        conn.execute(
            sa.text("UPDATE usuarios SET username = :u WHERE id = :id"), {"u": username, "id": id_}
        )
    if renamed:
        log.warning(
            "usernames rewritten for %d usuarios: run `flask cache-clear` "
            "so no cached body shows the old ones",
            len(renamed),
        )


def downgrade():
    pass
