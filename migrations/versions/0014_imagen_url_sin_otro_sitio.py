r"""Pictures whose path a browser reads as another site are cleared.

0013's rule let any value starting with / through as "a path from the site's
root"; a browser reads `//host/x.png` (and `/\host/x.png`) as an address on
another host. The API refuses those since this revision (catalogo/schemas.py
IMAGEN_URL); this clears the rows that hold one, with 0013's procedure: set to
'' (no picture), updated_at moved, each id and old value logged so an operator
can put a proper URL back, and a reminder to run `flask cache-clear`.

The expression is a frozen copy of IMAGEN_URL as of this revision. The
downgrade leaves them cleared (the old values are in the upgrade's log).

Revision ID: 0014_imagen_url_sin_otro_sitio
Revises: 0013_imagen_url_valida
Create Date: 2026-12-06
"""

import importlib.util
import re
from pathlib import Path

revision = "0014_imagen_url_sin_otro_sitio"
down_revision = "0013_imagen_url_valida"
branch_labels = None
depends_on = None

IMAGEN_URL = re.compile(
    r"(?:/(?:[^\u0000-\u0020/\\][^\u0000-\u0020]*)?"
    r"|[Hh][Tt][Tt][Pp][Ss]?://[^\u0000-\u0020/?#]+[^\u0000-\u0020]*)?"
)


def _m0013():
    path = Path(__file__).with_name("0013_imagen_url_valida.py")
    spec = importlib.util.spec_from_file_location("imagen_url_valida_0013", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def upgrade():
    _m0013().clear_refused(IMAGEN_URL, "a path a browser reads as another host")


def downgrade():
    pass
