"""The demo store's rows: usuarios, productos and pedidos drawn from one seeded generator.

`seed-demo` (electro_isla/commands.py) writes them. The rows are plain tuples in
the column order of the *_COLS below, generated in Python from one seeded
`random.Random` (so `--seed` reproduces the data exactly): usuarios who joined
over the last months, a catalogue in every category (some low or out of stock,
some withdrawn), and pedidos placed over those months in the states real orders
end up in, in chunks of CHUNK so a million pedidos never sit in memory at once.
"""

from __future__ import annotations

import bisect
import math
import random
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from electro_isla.catalogo.models import CATEGORIAS
from electro_isla.pedidos.models import METODOS_PAGO

DEMO_PASSWORD = "demo12345"  # noqa: S105  (printed on purpose: demo accounts)
CHUNK = 10_000

NOMBRES = (
    "Ana", "Carlos", "María", "José", "Laura", "Luis", "Carmen", "Jorge", "Elena", "Miguel",
    "Rosa", "Pedro", "Isabel", "Raúl", "Yanet", "Alejandro", "Daniela", "Ernesto", "Lisandra",
    "Yuniel", "Marta", "Rafael", "Claudia", "Osmany", "Beatriz", "Alberto", "Dayana", "Julio",
    "Mónica", "Roberto", "Yaimara", "Andrés", "Sofía", "Frank", "Liliana", "Javier",
)  # fmt: skip
APELLIDOS = (
    "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Pérez", "Sánchez",
    "Díaz", "Hernández", "Álvarez", "Ramírez", "Torres", "Castillo", "Morales", "Suárez",
    "Rojas", "Cabrera", "Delgado", "Reyes", "Herrera", "Medina", "Vega", "Fuentes", "Acosta",
    "Valdés", "Betancourt", "Machado", "Quintana", "Ortega",
)  # fmt: skip
CALLES = (
    "Obispo", "Neptuno", "San Lázaro", "Línea", "Calzada", "23", "Reina", "Galiano",
    "Martí", "Maceo", "Independencia", "Céspedes", "Agramonte", "Gómez", "Aguilera",
)  # fmt: skip
MUNICIPIOS = (
    ("Plaza", "La Habana"), ("Centro Habana", "La Habana"), ("Playa", "La Habana"),
    ("Habana Vieja", "La Habana"), ("Santiago de Cuba", "Santiago de Cuba"),
    ("Camagüey", "Camagüey"), ("Santa Clara", "Villa Clara"), ("Holguín", "Holguín"),
    ("Matanzas", "Matanzas"), ("Cienfuegos", "Cienfuegos"), ("Pinar del Río", "Pinar del Río"),
)  # fmt: skip
DOMINIOS = ("example.com", "example.net", "example.org")
NOTAS = (
    "Llamar antes de llegar.",
    "Entregar en la tarde.",
    "Dejar con el vecino si no estoy.",
    "Es un regalo, no incluir factura.",
    "Tocar fuerte, el timbre no funciona.",
)

# (product type, price range) per category; names get a brand and a model.
CATALOGO: dict[str, tuple[tuple[str, int, int], ...]] = {
    "electrodomesticos": (
        ("Refrigerador", 450, 1500), ("Lavadora automática", 350, 900), ("Microondas", 80, 260),
        ("Cocina de inducción", 60, 220), ("Olla arrocera", 25, 90), ("Licuadora", 30, 120),
        ("Ventilador de pie", 35, 110), ("Aire acondicionado split", 420, 1100),
        ("Freidora de aire", 60, 180), ("Cafetera eléctrica", 25, 140), ("Batidora", 20, 80),
    ),
    "energia_tecnologia": (
        ("Panel solar 450 W", 120, 260), ("Inversor híbrido", 380, 1400),
        ("Batería de litio", 300, 1800), ("Estación de energía portátil", 250, 1600),
        ("Power bank 20000 mAh", 18, 60), ("Estabilizador de voltaje", 30, 140),
        ("Laptop", 400, 1600), ("Tablet", 120, 500), ("Teléfono móvil", 110, 900),
        ("Router Wi-Fi", 25, 150), ("UPS 1500 VA", 90, 320),
    ),
    "herramientas": (
        ("Taladro percutor", 45, 220), ("Juego de destornilladores", 8, 45),
        ("Sierra circular", 70, 260), ("Amoladora angular", 40, 180),
        ("Caja de herramientas", 20, 120), ("Multímetro digital", 12, 90),
        ("Llave ajustable", 6, 35), ("Soldador eléctrico", 10, 70), ("Escalera de aluminio", 45, 160),
    ),
    "hogar_entretenimiento": (
        ('Televisor 43"', 260, 520), ('Televisor 55"', 420, 900), ("Barra de sonido", 80, 380),
        ("Consola de videojuegos", 300, 650), ("Bocina Bluetooth", 20, 160),
        ("Lámpara LED recargable", 8, 40), ("Reproductor multimedia", 25, 90),
        ("Juego de sábanas", 18, 70), ("Colchón ortopédico", 180, 650),
    ),
    "otros": (
        ("Cable HDMI 2 m", 3, 15), ("Extensión eléctrica", 6, 25), ("Pilas AA (4 u.)", 2, 9),
        ("Bombillo LED 9 W", 1, 6), ("Adaptador de enchufe", 2, 8), ("Cargador USB-C", 6, 30),
        ("Memoria USB 64 GB", 6, 22), ("Protector de voltaje", 10, 45),
    ),
}  # fmt: skip
MARCAS = (
    "Samsung", "LG", "Haier", "Midea", "Hisense", "Sankey", "Premier", "Royal", "Bosch",
    "Makita", "EcoFlow", "Xiaomi", "TP-Link", "Philips", "Black+Decker", "Growatt", "Lenovo",
)  # fmt: skip
# Category mix of a store like this one (every category still gets products).
PESO_CATEGORIA = {
    "electrodomesticos": 30,
    "energia_tecnologia": 25,
    "herramientas": 15,
    "hogar_entretenimiento": 20,
    "otros": 10,
}

# How orders of a given age end up: the older, the more settled.
ESTADOS_POR_EDAD: tuple[tuple[float, tuple[str, ...], tuple[int, ...]], ...] = (
    (3, ("pendiente", "confirmado", "en_preparacion", "en_camino", "entregado", "cancelado"),
        (30, 20, 15, 15, 12, 8)),
    (10, ("pendiente", "confirmado", "en_preparacion", "en_camino", "entregado", "cancelado"),
        (2, 3, 5, 10, 70, 10)),
    (math.inf, ("entregado", "cancelado", "pendiente"), (87, 12, 1)),
)  # fmt: skip
METODO_PESOS = (45, 35, 20)  # efectivo, tarjeta, transferencia
ITEMS_PESOS = (50, 28, 15, 7)  # 1..4 products per pedido
CANTIDAD_PESOS = (72, 17, 7, 4)  # 1..4 units per product

USUARIO_COLS = (
    "id", "username", "email", "password_hash", "first_name", "last_name", "rol",
    "is_active", "date_joined", "telefono", "direccion",
)  # fmt: skip
PRODUCTO_COLS = (
    "id", "nombre", "descripcion", "precio", "descuento", "stock", "categoria",
    "imagen_url", "activo", "created_at", "updated_at",
)  # fmt: skip
PEDIDO_COLS = (
    "id", "usuario_id", "estado", "metodo_pago", "total", "direccion_entrega", "telefono",
    "notas", "mensajero_id", "created_at", "updated_at", "fecha_entrega",
)  # fmt: skip
DETALLE_COLS = (
    "id", "pedido_id", "producto_id", "producto_nombre", "cantidad", "precio_unitario",
    "subtotal",
)  # fmt: skip


def _ascii(value: str) -> str:
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()


def month_start(moment: datetime, months_back: int) -> datetime:
    """First instant (UTC) of the calendar month `months_back` before `moment`'s."""
    index = moment.year * 12 + moment.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass
class Periodo:
    """The seeded window: from the first day of the oldest month up to `hasta`."""

    desde: datetime
    hasta: datetime

    @property
    def seconds(self) -> float:
        return (self.hasta - self.desde).total_seconds()

    def instante(self, fraction: float) -> datetime:
        return self.desde + timedelta(seconds=int(fraction * self.seconds))


@dataclass
class ProductoDemo:
    id: int
    nombre: str
    precio_final: Decimal


class DemoGenerator:
    """Rows for the demo store, all drawn from one seeded generator."""

    def __init__(self, rng: random.Random, periodo: Periodo, password_hash: str) -> None:
        self.rng = rng
        self.periodo = periodo
        self.password_hash = password_hash

    def _growth(self) -> float:
        """A fraction of the period, denser towards now: a store that grows."""
        return self.rng.random() ** (1 / 1.6)

    def _direccion(self) -> str:
        rng = self.rng
        municipio, provincia = rng.choice(MUNICIPIOS)
        return (
            f"Calle {rng.choice(CALLES)} #{rng.randint(1, 999)} e/ {rng.choice(CALLES)} "
            f"y {rng.choice(CALLES)}, {municipio}, {provincia}"
        )

    def _telefono(self) -> str:
        return f"+53 5{self.rng.randint(0, 9_999_999):07d}"

    def roles(self, count: int) -> list[str]:
        staff = 0 if count < 5 else max(1, min(20, count // 100))
        mensajeros = 0 if count < 5 else max(1, min(60, count // 50))
        return (
            ["trabajador"] * staff
            + ["mensajero"] * mensajeros
            + ["cliente"] * (count - staff - mensajeros)
        )

    def usuarios(self, first_id: int, count: int) -> list[tuple]:
        """Usuarios sorted by date_joined; the first one is a cliente who joined on day one."""
        rng, periodo = self.rng, self.periodo
        joined = sorted(periodo.instante(self._growth()) for _ in range(count))
        roles = self.roles(count)
        rng.shuffle(roles)
        if joined:
            joined[0] = periodo.desde
            first_cliente = roles.index("cliente") if "cliente" in roles else 0
            roles[0], roles[first_cliente] = roles[first_cliente], roles[0]
        rows = []
        for offset, (rol, date_joined) in enumerate(zip(roles, joined, strict=True)):
            uid = first_id + offset
            first, last = rng.choice(NOMBRES), rng.choice(APELLIDOS)
            username = f"{_ascii(first)}.{_ascii(last)}{uid}".replace(" ", "")
            rows.append(
                (
                    uid,
                    username,
                    f"{username}@{rng.choice(DOMINIOS)}",
                    self.password_hash,
                    first,
                    last,
                    rol,
                    rng.random() > 0.03,  # a few accounts were closed
                    date_joined,
                    self._telefono(),
                    self._direccion(),
                )
            )
        return rows

    def productos(self, first_id: int, count: int) -> list[tuple]:
        rng, periodo = self.rng, self.periodo
        categorias = list(CATEGORIAS)
        rng.shuffle(categorias)
        weights = [PESO_CATEGORIA[c] for c in CATEGORIAS]
        extra = rng.choices(CATEGORIAS, weights=weights, k=max(0, count - len(categorias)))
        por_producto = (categorias + extra)[:count]

        order = list(range(count))
        rng.shuffle(order)
        sin_stock = set(order[: max(1, count // 10)]) if count >= 5 else set()
        stock_bajo = set(order[len(sin_stock) : len(sin_stock) + max(1, count * 15 // 100)])
        if count < 5:
            stock_bajo = set()
        inactivos = set(rng.sample(range(count), count * 8 // 100)) if count >= 10 else set()

        rows = []
        for index, categoria in enumerate(por_producto):
            tipo, low, high = rng.choice(CATALOGO[categoria])
            marca = rng.choice(MARCAS)
            modelo = f"{rng.choice('ABCDEFGHKLMNPRSTX')}{rng.choice('ABCDEFGHKLMNPRSTX')}-{rng.randint(100, 9999)}"
            precio = Decimal(rng.randint(low, high)) + Decimal("0.99")
            descuento = 0 if rng.random() < 0.7 else rng.choice((5, 10, 10, 15, 20, 25, 30, 50))
            if index in sin_stock:
                stock = 0
            elif index in stock_bajo:
                stock = rng.randint(1, 9)
            else:
                stock = rng.randint(10, 250)
            created = periodo.desde - timedelta(
                days=rng.randint(0, 120), minutes=rng.randint(0, 1439)
            )
            updated = periodo.instante(rng.random()) if rng.random() < 0.3 else created
            pid = first_id + index
            rows.append(
                (
                    pid,
                    f"{tipo} {marca} {modelo}",
                    f"{tipo} {marca}, modelo {modelo}. Garantía de {rng.choice((3, 6, 12, 24))} meses.",
                    precio,
                    descuento,
                    stock,
                    categoria,
                    f"https://img.electroisla.example/productos/{pid}.jpg",
                    index not in inactivos,
                    created,
                    updated,
                )
            )
        return rows

    def pedidos(
        self,
        first_pedido_id: int,
        first_detalle_id: int,
        count: int,
        clientes: Sequence[tuple[int, datetime, str, str]],
        mensajeros: Sequence[int],
        productos: Sequence[ProductoDemo],
    ) -> Iterator[tuple[list[tuple], list[tuple]]]:
        """Chunks of (pedidos, detalles); ids grow with created_at, like real ones."""
        rng, periodo = self.rng, self.periodo
        joined = [c[1] for c in clientes]
        # Popular products sell more (a long tail, as in any shop).
        popularity = list(range(len(productos)))
        rng.shuffle(popularity)
        cum_weights = list(_accumulate(1 / (rank + 1) ** 0.8 for rank in popularity))
        instants = sorted(self._growth() for _ in range(count))
        pedido_id, detalle_id = first_pedido_id, first_detalle_id
        estados_tablas = [
            (limit, estados, list(_accumulate(w))) for limit, estados, w in ESTADOS_POR_EDAD
        ]
        metodo_cw = list(_accumulate(METODO_PESOS))
        items_cw = list(_accumulate(ITEMS_PESOS))
        cantidad_cw = list(_accumulate(CANTIDAD_PESOS))
        hasta = periodo.hasta
        choices = rng.choices
        random_ = rng.random

        for start in range(0, count, CHUNK):
            pedidos: list[tuple] = []
            detalles: list[tuple] = []
            for fraction in instants[start : start + CHUNK]:
                created = periodo.instante(fraction)
                # Only someone who had already joined can order.
                known = max(1, bisect.bisect_right(joined, created))
                usuario_id, _, direccion, telefono = clientes[int(random_() * known)]
                age_days = (hasta - created).total_seconds() / 86400
                for limit, estados, cw in estados_tablas:
                    if age_days < limit:
                        estado = choices(estados, cum_weights=cw)[0]
                        break
                mensajero_id = None
                fecha_entrega = None
                if estado in ("en_camino", "entregado") and mensajeros:
                    mensajero_id = mensajeros[int(random_() * len(mensajeros))]
                if estado == "entregado":
                    fecha_entrega = min(hasta, created + timedelta(hours=2 + random_() * 70))
                    updated = fecha_entrega
                elif estado == "pendiente":
                    updated = created
                else:
                    updated = min(hasta, created + timedelta(minutes=10 + random_() * 2880))

                items = choices((1, 2, 3, 4), cum_weights=items_cw)[0]
                elegidos = dict.fromkeys(
                    choices(range(len(productos)), cum_weights=cum_weights, k=items)
                )
                total = Decimal("0.00")
                for index in elegidos:
                    producto = productos[index]
                    cantidad = choices((1, 2, 3, 4), cum_weights=cantidad_cw)[0]
                    subtotal = producto.precio_final * cantidad
                    total += subtotal
                    detalles.append(
                        (
                            detalle_id,
                            pedido_id,
                            producto.id,
                            producto.nombre,
                            cantidad,
                            producto.precio_final,
                            subtotal,
                        )
                    )
                    detalle_id += 1
                pedidos.append(
                    (
                        pedido_id,
                        usuario_id,
                        estado,
                        choices(METODOS_PAGO, cum_weights=metodo_cw)[0],
                        total,
                        direccion,
                        telefono,
                        NOTAS[int(random_() * len(NOTAS))] if random_() < 0.15 else "",
                        mensajero_id,
                        created,
                        updated,
                        fecha_entrega,
                    )
                )
                pedido_id += 1
            yield pedidos, detalles


def _accumulate(values: Any) -> Iterator[float]:
    total = 0
    for value in values:
        total += value
        yield total
