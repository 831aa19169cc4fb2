"""Write-side costs of the statistics rollups, measured with and without their triggers.

Used by bench/estadisticas.py on each seeded database (one run, side by side):

- POST /api/pedidos/ p50, one client after another, interleaved round by round
  with the rollup triggers enabled and disabled (`ALTER TABLE ... DISABLE TRIGGER
  USER` on pedidos and detalles_pedido, which leaves the foreign keys alone),
  after WARM unmeasured orders (the ALTER invalidates every session's plans);
- 40 concurrent buyers (threads, each with its own client and session), orders
  per second, same interleaving; every order must be a 201 (no deadlock);
- afterwards the triggers are enabled again and `estadisticas-rebuild` repairs
  what the trigger-less orders left out (unless rebuild=False: bench/filas_calientes.py
  also measures the schema before 0007, which this code's rebuild does not know).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text

from electro_isla.auth.service import issue_access_token
from electro_isla.catalogo.models import Producto
from electro_isla.estadisticas import operaciones
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario

TABLES = ("pedidos", "detalles_pedido")
WARM = 30
BODY = {"metodo_pago": "tarjeta", "direccion_entrega": "Calle 1", "telefono": "555"}


def _triggers(app: Any, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    with app.app_context(), db.engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"ALTER TABLE {table} {verb} TRIGGER USER"))


def _buyers(app: Any, n: int) -> tuple[list[dict[str, str]], list[int]]:
    run = uuid.uuid4().hex[:6]  # kept databases may hold an earlier run's buyers
    with app.app_context():
        usuarios = []
        for i in range(n):
            u = Usuario(username=f"bench-{run}-{i}", email=f"{run}{i}@x.test", rol="cliente")
            u.password_hash = "x"
            usuarios.append(u)
        productos = [
            Producto(nombre=f"Bench {i}", precio=10, stock=10**8, categoria="otros")
            for i in range(8)
        ]
        db.session.add_all(usuarios + productos)
        db.session.commit()
        headers = [{"Authorization": f"Bearer {issue_access_token(u)}"} for u in usuarios]
        ids = [p.id for p in productos]
        db.session.remove()
    return headers, ids


def _post(client: Any, headers: dict[str, str], producto_id: int) -> int:
    body = {"items": [{"producto_id": producto_id, "cantidad": 1}], **BODY}
    return client.post("/api/pedidos/", json=body, headers=headers).status_code


def measure(
    app: Any, rounds: int = 3, sequential: int = 40, buyers: int = 40, rebuild: bool = True
) -> dict[str, Any]:
    headers, productos = _buyers(app, buyers)
    client = app.test_client()
    assert _post(client, headers[0], productos[0]) == 201  # warm connections and code paths
    p50: dict[bool, list[float]] = {True: [], False: []}
    rate: dict[bool, list[float]] = {True: [], False: []}
    statuses: dict[int, int] = {}
    try:
        for r in range(rounds):
            for enabled in (True, False) if r % 2 == 0 else (False, True):
                _triggers(app, enabled)
                # ALTER TABLE invalidates every session's cached plans: let each pooled
                # connection re-plan before measuring, as a long-running server would have.
                for i in range(WARM):
                    _post(client, headers[i % buyers], productos[i % len(productos)])
                times = []
                for i in range(sequential):
                    started = time.perf_counter()
                    code = _post(client, headers[i % buyers], productos[i % len(productos)])
                    times.append(time.perf_counter() - started)
                    statuses[code] = statuses.get(code, 0) + 1
                p50[enabled].append(statistics.median(times))
                barrier = threading.Barrier(buyers)

                def buyer(i: int, barrier: threading.Barrier = barrier) -> int:
                    own = app.test_client()
                    barrier.wait()
                    codes = [_post(own, headers[i], productos[(i + k) % 8]) for k in range(5)]
                    return max(codes)

                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=buyers) as pool:
                    codes = list(pool.map(buyer, range(buyers)))
                rate[enabled].append(5 * buyers / (time.perf_counter() - started))
                for code in codes:
                    statuses[code] = statuses.get(code, 0) + 1
    finally:
        _triggers(app, True)
        if rebuild:
            with app.app_context():
                operaciones.rebuild()
                db.session.remove()
    return {
        "p50_with": statistics.median(p50[True]),
        "p50_without": statistics.median(p50[False]),
        "rate_with": statistics.median(rate[True]),
        "rate_without": statistics.median(rate[False]),
        "statuses": statuses,
        "rounds": rounds,
    }
