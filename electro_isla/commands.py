"""Application CLI (`flask --app wsgi <command>`): users and demo data.

`seed-demo` writes a realistic store: usuarios who joined over the last months,
a catalogue in every category (some low or out of stock, some withdrawn), and
pedidos placed over those months in the states real orders end up in. It is
built for volume: rows are generated in Python from one seeded `random.Random`
(so `--seed` reproduces the data exactly) and written in bulk, with COPY on
PostgreSQL, so a million pedidos is a matter of a minute or two.
"""

from __future__ import annotations

import bisect
import math
import random
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import click
from flask import Blueprint
from sqlalchemy import func, insert, select, text
from werkzeug.security import generate_password_hash

from electro_isla.cache import invalidate_after_commit
from electro_isla.catalogo.models import CATEGORIAS, Producto
from electro_isla.db_types import money, utcnow
from electro_isla.extensions import db
from electro_isla.pedidos.models import METODOS_PAGO, DetallePedido, Pedido
from electro_isla.usuarios.models import ROLES, Usuario

app_cli = Blueprint("app_cli", __name__, cli_group=None)

MIN_PASSWORD = 8
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# -- create-user ---------------------------------------------------------------


@app_cli.cli.command("create-user")
@click.argument("username")
@click.option("--email", required=True, help="Unique e-mail address.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help=f"At least {MIN_PASSWORD} characters (prompted when omitted).",
)
@click.option("--rol", type=click.Choice(ROLES), default="cliente", show_default=True)
@click.option("--first-name", default="", help="Given name.")
@click.option("--last-name", default="", help="Family name.")
@click.option(
    "--if-missing", is_flag=True, help="Do nothing (exit 0) when USERNAME already exists."
)
def create_user(
    username: str,
    email: str,
    password: str,
    rol: str,
    first_name: str,
    last_name: str,
    if_missing: bool,
) -> None:
    """Create a usuario with any role (the API never lets anyone choose their own)."""
    from electro_isla.auth.schemas import USERNAME_PATTERN
    from electro_isla.usuarios.models import normalize_email
    from electro_isla.usuarios.service import crear_usuario, existe_usuario

    username = username.strip()
    email = normalize_email(email)
    if not username or len(username) > 150:
        raise click.BadParameter("1 to 150 characters.", param_hint="USERNAME")
    if not re.match(USERNAME_PATTERN, username):
        # The API's rule: no "@", so a username is never taken for an email at login.
        raise click.BadParameter("letters, digits and . + - _ only.", param_hint="USERNAME")
    if if_missing and existe_usuario(username=username):
        return
    if len(password) < MIN_PASSWORD:
        raise click.BadParameter(f"at least {MIN_PASSWORD} characters.", param_hint="--password")
    if "\x00" in password:
        raise click.BadParameter("no NUL characters.", param_hint="--password")
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise click.BadParameter("not a valid e-mail address.", param_hint="--email")
    if existe_usuario(username=username):
        raise click.ClickException(f"username {username!r} already exists")
    if existe_usuario(email=email):
        raise click.ClickException(f"e-mail {email!r} already belongs to another usuario")
    usuario = crear_usuario(username, email, password, rol, first_name, last_name)
    click.echo(f"Created usuario {usuario.username!r} (id {usuario.id}, rol {usuario.rol}).")


# -- seed-demo -----------------------------------------------------------------

SETVAL = (
    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
    "coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
)
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


def _next_id(model: type) -> int:
    return (db.session.scalar(select(func.max(model.id))) or 0) + 1


def _insert(model: type, columns: Sequence[str], rows: list[tuple]) -> None:
    """Bulk insert through the ORM (the cache listeners see it), in chunks."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        db.session.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in chunk])


def _write(model: type, columns: Sequence[str], rows: list[tuple], postgres: bool) -> None:
    """COPY on PostgreSQL (the fastest way in, in the session's transaction), else ORM bulk."""
    if not postgres:
        _insert(model, columns, rows)
        return
    raw = db.session.connection().connection.driver_connection
    copy_sql = f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row)


@app_cli.cli.command("seed-demo")
@click.option(
    "--usuarios", "n_usuarios", default=60, show_default=True, type=click.IntRange(1, 10_000_000)
)
@click.option(
    "--productos", "n_productos", default=80, show_default=True, type=click.IntRange(1, 1_000_000)
)
@click.option(
    "--pedidos", "n_pedidos", default=3000, show_default=True, type=click.IntRange(0, 50_000_000)
)
@click.option(
    "--meses", default=12, show_default=True, type=click.IntRange(1, 120), help="Months of history."
)
@click.option(
    "--seed", type=int, default=None, help="Make the data reproducible (default: random)."
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has usuarios.")
def seed_demo(
    n_usuarios: int, n_productos: int, n_pedidos: int, meses: int, seed: int | None, if_empty: bool
) -> None:
    """Fill the database with a realistic demo store (usuarios, productos, pedidos)."""
    if if_empty and db.session.scalar(select(Usuario.id).limit(1)) is not None:
        click.echo("seed-demo: the database already has usuarios; nothing to do.")
        return
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    hasta = utcnow().replace(second=0, microsecond=0)
    periodo = Periodo(month_start(hasta, meses - 1), hasta)
    generator = DemoGenerator(rng, periodo, generate_password_hash(DEMO_PASSWORD))
    postgres = db.session.get_bind().dialect.name == "postgresql"
    started = datetime.now(UTC)
    if postgres:
        # Ids are assigned here from max(id): writers wait until we commit (readers do not).
        db.session.execute(
            text("LOCK TABLE usuarios, productos, pedidos, detalles_pedido IN EXCLUSIVE MODE")
        )

    usuarios = generator.usuarios(_next_id(Usuario), n_usuarios)
    _insert(Usuario, USUARIO_COLS, usuarios)
    productos = generator.productos(_next_id(Producto), n_productos)
    _insert(Producto, PRODUCTO_COLS, productos)

    uid, rol, joined, telefono, direccion = (
        USUARIO_COLS.index(c) for c in ("id", "rol", "date_joined", "telefono", "direccion")
    )
    clientes = [
        (u[uid], u[joined], u[direccion], u[telefono]) for u in usuarios if u[rol] == "cliente"
    ]
    mensajeros = [u[uid] for u in usuarios if u[rol] == "mensajero"]
    catalogo = [ProductoDemo(p[0], p[1], money(p[3] * (100 - p[4]) / 100)) for p in productos]
    n_detalles = 0
    with click.progressbar(length=n_pedidos, label="pedidos", show_pos=True) as bar:
        chunks = generator.pedidos(
            _next_id(Pedido), _next_id(DetallePedido), n_pedidos, clientes, mensajeros, catalogo
        )
        for pedidos, detalles in chunks:
            _write(Pedido, PEDIDO_COLS, pedidos, postgres)
            _write(DetallePedido, DETALLE_COLS, detalles, postgres)
            n_detalles += len(detalles)
            bar.update(len(pedidos))

    if postgres:
        for table in ("usuarios", "productos", "pedidos", "detalles_pedido"):
            # Explicit ids were written: move each sequence past them.
            sql = SETVAL.format(table=table)
            db.session.execute(text(sql))
        # COPY is invisible to the ORM listeners.
        invalidate_after_commit(db.session, "usuarios", "productos", "pedidos", "detalles_pedido")
    db.session.commit()
    seconds = (datetime.now(UTC) - started).total_seconds()
    click.echo(
        f"seed-demo: {n_usuarios} usuarios, {n_productos} productos, {n_pedidos} pedidos, "
        f"{n_detalles} detalles over {meses} months in {seconds:.1f} s (--seed {seed}). "
        f"Demo usuarios log in with password {DEMO_PASSWORD!r}."
    )
