"""A seeded random shop and the dashboard figures computed from it in plain Python.

The expected figures never touch SQL nor the service's month boundaries: each
row's month is simply its timestamp shown in the store's time zone, formatted
as YYYY-MM. Comparing the two proves the SQL bucketing, orderings and sums.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla.usuarios.models import Usuario

SALE = {"confirmado", "en_preparacion", "en_camino", "entregado"}
EN_PROCESO = {"confirmado", "en_preparacion", "en_camino"}
ESTADOS = ["pendiente", "confirmado", "en_preparacion", "en_camino", "entregado", "cancelado"]
METODOS = ["efectivo", "tarjeta", "transferencia"]
CATEGORIAS = ["electrodomesticos", "energia_tecnologia", "herramientas", "hogar_entretenimiento"]
ROLES_ORDER = ["admin", "trabajador", "mensajero", "cliente"]


def cents(value: Decimal) -> float:
    """How the API renders money: rounded half up to cents, as a JSON number."""
    return float(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def month_labels(now: datetime, tz: ZoneInfo) -> list[str]:
    local = now.astimezone(tz)
    y, m = local.year, local.month
    labels = []
    for _ in range(12):
        labels.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return labels[::-1]


def month_of(ts: datetime, tz: ZoneInfo) -> str:
    return ts.astimezone(tz).strftime("%Y-%m")


def local_month_starts(now: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
    """UTC instants of local midnights on the 1st, around `now`, found by scanning hours.

    Deliberately not the service's arithmetic: walk back hour by hour and note
    where the local month label changes.
    """
    starts = []
    t = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=40)
    end = t - timedelta(days=31 * count)
    while t > end:
        prev = t - timedelta(hours=1)
        if month_of(prev, tz) != month_of(t, tz):
            # Refine to the second.
            lo, hi = prev, t
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if month_of(mid, tz) == month_of(t, tz):
                    hi = mid
                else:
                    lo = mid
            starts.append(hi.replace(microsecond=0))
        t = prev
    return starts


@dataclass
class Shop:
    usuarios: list[dict[str, Any]] = field(default_factory=list)
    productos: list[dict[str, Any]] = field(default_factory=list)
    pedidos: list[dict[str, Any]] = field(default_factory=list)
    detalles: list[dict[str, Any]] = field(default_factory=list)


def build_shop(seed: int, now: datetime, tz: ZoneInfo, scale: int = 1, first_id: int = 1) -> Shop:
    """Rows as dicts (ids from `first_id`) with the awkward cases the contract names."""
    rnd = random.Random(seed)
    shop = Shop()
    boundaries = local_month_starts(now, tz, 15)
    span = timedelta(days=430)

    def when() -> datetime:
        # A third of the timestamps sit a few seconds either side of a month boundary.
        if rnd.random() < 0.35:
            b = rnd.choice(boundaries)
            return b + timedelta(seconds=rnd.choice([-3, -2, -1, 0, 1, 2, 3]))
        return now - span * rnd.random() + timedelta(days=2) * rnd.random()

    roles = ["admin"] + ["trabajador"] * 2 + ["mensajero"] * 3 + ["cliente"] * 30
    for i in range(first_id, first_id + 36 * scale):
        shop.usuarios.append(
            {
                "id": i,
                "username": f"u{i:04d}",
                "email": f"u{i:04d}@example.test",
                "password_hash": "x",
                "first_name": rnd.choice(["Ana", "Luis", "Marta", ""]),
                "last_name": rnd.choice(["Pérez", "Díaz", ""]),
                "rol": roles[i % len(roles)] if scale == 1 else rnd.choice(roles),
                "is_active": rnd.random() > 0.1,
                "date_joined": when(),
            }
        )
    # The caller logs in as usuario 1: an active admin.
    shop.usuarios[0].update(rol="admin", is_active=True)
    # Three active products tie at the top of productos_mas_rentables (precio × stock
    # 1,200,000); a more valuable inactive one must not count; then small edge values.
    fixed = [
        ("90000.00", 100, False),
        ("12000.00", 100, True),
        ("3000.00", 400, True),
        ("6000.00", 200, True),
        ("0.01", 7, True),
        ("500.00", 0, True),
    ]
    for i in range(first_id, first_id + 30 * scale):
        activo = rnd.random() > 0.2
        if i - first_id < len(fixed):
            precio, stock, activo = fixed[i - first_id]
            precio = Decimal(precio)
        else:
            precio = Decimal(rnd.randint(1, 99999)) / 100
            stock = rnd.choice([0, 0, 1, 3, 9, 9, 10, rnd.randint(0, 300)])
        shop.productos.append(
            {
                "id": i,
                "nombre": f"Producto {i}",
                "descripcion": "",
                "precio": precio,
                "descuento": 0,
                "stock": stock,
                "categoria": rnd.choice(CATEGORIAS),
                "activo": activo,
                "created_at": now - timedelta(days=400),
            }
        )
    detalle_id = (first_id - 1) * 10
    for i in range(first_id, first_id + 260 * scale):
        usuario = rnd.choice(shop.usuarios[: max(5, len(shop.usuarios) * 2 // 3)])
        items = rnd.sample(shop.productos, rnd.randint(1, 3))
        total = Decimal("0")
        for p in items:
            detalle_id += 1
            cantidad = rnd.randint(1, 4)
            subtotal = p["precio"] * cantidad
            total += subtotal
            shop.detalles.append(
                {
                    "id": detalle_id,
                    "pedido_id": i,
                    "producto_id": p["id"],
                    # The name at the time of the sale; the statistics show the current one.
                    "producto_nombre": f"Old name {p['id']}",
                    "cantidad": cantidad,
                    "precio_unitario": p["precio"],
                    "subtotal": subtotal,
                }
            )
        shop.pedidos.append(
            {
                "id": i,
                "usuario_id": usuario["id"],
                "estado": rnd.choice(ESTADOS),
                "metodo_pago": rnd.choice(METODOS),
                "total": total,
                "direccion_entrega": "Calle 1",
                "telefono": "555",
                "created_at": when(),
            }
        )
    return shop


def insert_shop(shop: Shop) -> None:
    """Bulk inserts in the app context's session, then fix sequences on PostgreSQL."""
    session = db.session
    for model, rows in (
        (Usuario, shop.usuarios),
        (Producto, shop.productos),
        (Pedido, shop.pedidos),
        (DetallePedido, shop.detalles),
    ):
        if rows:
            session.execute(insert(model), rows)
    session.commit()
    if db.engine.dialect.name == "postgresql":
        for table in ("usuarios", "productos", "pedidos", "detalles_pedido"):
            # Table names are this module's constants, never input.
            sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"  # noqa: S608
            session.execute(db.text(sql))
        session.commit()


def expected(shop: Shop, now: datetime, tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    labels = month_labels(now, tz)
    current = labels[-1]
    sales = [p for p in shop.pedidos if p["estado"] in SALE]
    productos = {p["id"]: p for p in shop.productos}

    # ventas
    by_month: dict[str, list[Decimal]] = defaultdict(list)
    for p in sales:
        by_month[month_of(p["created_at"], tz)].append(p["total"])
    ventas_por_mes = [
        {"mes": m, "total": cents(sum(by_month[m], Decimal(0))), "pedidos": len(by_month[m])}
        for m in labels
    ]
    sale_ids = {p["id"] for p in sales}
    qty: Counter[int] = Counter()
    income: dict[int, Decimal] = defaultdict(Decimal)
    for d in shop.detalles:
        if d["pedido_id"] in sale_ids:
            qty[d["producto_id"]] += d["cantidad"]
            income[d["producto_id"]] += d["subtotal"]
    top = sorted(qty, key=lambda pid: (-qty[pid], pid))[:10]
    productos_mas_vendidos = [
        {
            "producto_id": pid,
            "producto__nombre": productos[pid]["nombre"],
            "producto__categoria": productos[pid]["categoria"],
            "cantidad_vendida": qty[pid],
            "ingresos": cents(income[pid]),
        }
        for pid in top
    ]
    metodo_n: Counter[str] = Counter(p["metodo_pago"] for p in sales)
    metodo_total: dict[str, Decimal] = defaultdict(Decimal)
    for p in sales:
        metodo_total[p["metodo_pago"]] += p["total"]
    metodos_pago = [
        {"metodo_pago": m, "count": metodo_n[m], "total": cents(metodo_total[m])}
        for m in sorted(metodo_n, key=lambda m: (-metodo_n[m], m))
    ]
    total_sales = sum((p["total"] for p in sales), Decimal(0))
    ticket = cents(total_sales / len(sales)) if sales else 0.0
    ventas = {
        "ventas_por_mes": ventas_por_mes,
        "productos_mas_vendidos": productos_mas_vendidos,
        "metodos_pago": metodos_pago,
        "ticket_promedio": ticket,
    }

    # usuarios
    joined = Counter(month_of(u["date_joined"], tz) for u in shop.usuarios)
    roles = Counter(u["rol"] for u in shop.usuarios)
    n_pedidos = Counter(p["usuario_id"] for p in shop.pedidos)
    usuarios_by_id = {u["id"]: u for u in shop.usuarios}
    activos = sorted(n_pedidos, key=lambda uid: (-n_pedidos[uid], uid))[:10]
    total_usuarios = len(n_pedidos)
    recurrentes = sum(1 for n in n_pedidos.values() if n > 1)
    usuarios = {
        "usuarios_por_mes": [{"mes": m, "nuevos": joined[m]} for m in labels],
        "usuarios_por_rol": [{"rol": r, "count": roles[r]} for r in ROLES_ORDER],
        "usuarios_mas_activos": [
            {
                "id": uid,
                "username": usuarios_by_id[uid]["username"],
                "first_name": usuarios_by_id[uid]["first_name"],
                "last_name": usuarios_by_id[uid]["last_name"],
                "pedidos_count": n_pedidos[uid],
            }
            for uid in activos
        ],
        "total_usuarios": total_usuarios,
        "usuarios_recurrentes": recurrentes,
        "tasa_retencion": cents(Decimal(100 * recurrentes) / total_usuarios)
        if total_usuarios
        else 0.0,
    }

    # productos
    activos_p = [p for p in shop.productos if p["activo"]]
    cat_count: Counter[str] = Counter(p["categoria"] for p in activos_p)
    cat_stock: Counter[str] = Counter()
    for p in activos_p:
        cat_stock[p["categoria"]] += p["stock"]
    bajo = sorted(
        (p for p in activos_p if 1 <= p["stock"] <= 9), key=lambda p: (p["stock"], p["id"])
    )
    rentables = sorted(activos_p, key=lambda p: (-(p["precio"] * p["stock"]), p["id"]))[:10]
    productos_stats = {
        "productos_por_categoria": [
            {"categoria": c, "count": cat_count[c], "stock_total": cat_stock[c]}
            for c in sorted(cat_count)
        ],
        "stock_bajo": [
            {"id": p["id"], "nombre": p["nombre"], "stock": p["stock"], "categoria": p["categoria"]}
            for p in bajo
        ],
        "productos_sin_stock": sum(1 for p in activos_p if p["stock"] == 0),
        "valor_inventario": cents(sum((p["precio"] * p["stock"] for p in activos_p), Decimal(0))),
        "productos_mas_rentables": [
            {
                "id": p["id"],
                "nombre": p["nombre"],
                "precio": cents(p["precio"]),
                "stock": p["stock"],
                "valor_total": cents(p["precio"] * p["stock"]),
            }
            for p in rentables
        ],
    }

    # reporte
    this_month = [p for p in shop.pedidos if month_of(p["created_at"], tz) == current]
    reporte = {
        "resumen": {
            "total_usuarios": len(shop.usuarios),
            "total_productos": len(activos_p),
            "total_pedidos": len(shop.pedidos),
            "ingresos_totales": cents(total_sales),
            "pedidos_mes": len(this_month),
            "ingresos_mes": cents(
                sum((p["total"] for p in this_month if p["estado"] in SALE), Decimal(0))
            ),
            "pedidos_pendientes": sum(1 for p in shop.pedidos if p["estado"] == "pendiente"),
            "pedidos_en_proceso": sum(1 for p in shop.pedidos if p["estado"] in EN_PROCESO),
        }
    }
    return {
        "ventas": ventas,
        "usuarios": usuarios,
        "productos": productos_stats,
        "reporte": reporte,
    }
