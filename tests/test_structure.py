"""Structure the code promises: no import circle, extensions.py only creates instances,
derived column lists."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from marshmallow import Schema, fields

import electro_isla
from electro_isla.cache.registry import PRODUCTO_COLUMNS, REGISTRY, document_columns
from electro_isla.catalogo.models import Producto
from electro_isla.catalogo.schemas import ProductoSchema


def loaded_by(module: str) -> set[str]:
    """The package's modules a fresh interpreter holds after `import module`."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('electro_isla')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(ast.literal_eval(out))


def test_usuarios_service_does_not_import_the_request_machinery_of_auth():
    """auth/permissions.py reads usuarios/service.py; never the other way round."""
    assert "electro_isla.auth.permissions" not in loaded_by("electro_isla.usuarios.service")


PACKAGE = Path(electro_isla.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["electro_isla", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, tree: ast.Module, known: dict) -> set[str]:
    """The package's modules `name` imports anywhere in it (functions and TYPE_CHECKING too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            candidates = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def import_circles() -> list[set[str]]:
    """Strongly connected components (more than one module) of the package's import graph."""
    known = _modules()
    graph = {
        name: _imports(name, path, ast.parse(path.read_text("utf-8")), known)
        for name, path in known.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return circles


def test_the_package_has_no_import_circle():
    assert import_circles() == []


def test_a_function_level_import_names_the_cycle_it_breaks():
    """Outside the factory, an import inside a function needs a real cycle, said in a comment."""
    unexplained = []
    for path in _modules().values():
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "__init__.py":
            continue
        source = path.read_text("utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in top:
                continue
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if not (getattr(node, "level", 0) or (module or "").startswith("electro_isla")):
                continue
            said = " ".join(lines[max(0, node.lineno - 3) : node.end_lineno])
            if "cycle" not in said:
                unexplained.append(f"{relative}:{node.lineno}")
    assert unexplained == []


def test_extensions_only_creates_instances():
    """extensions.py imports no module of the package that is not below it, defines nothing."""
    tree = ast.parse((PACKAGE / "extensions.py").read_text("utf-8"))
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert defined == []
    # config (and the value checks it runs): what electro_isla/__init__.py imports at its top.
    below = {"", ".config", ".config_values", ".database", ".envelope", ".extensions"}
    assert loaded_by("electro_isla.extensions") <= {f"electro_isla{m}" for m in below}


def test_producto_columns_are_what_the_producto_document_shows():
    shown = set(ProductoSchema().fields) - {"precio_final"}
    assert shown | {"precio", "descuento"} == PRODUCTO_COLUMNS
    assert set(Producto.__table__.columns.keys()) >= PRODUCTO_COLUMNS
    assert REGISTRY["producto"].reads["productos"] is PRODUCTO_COLUMNS


def test_a_new_field_is_watched_and_an_undeclared_computed_one_is_refused():
    class Menos(Schema):
        id = fields.Integer()
        nombre = fields.String(attribute="nombre", data_key="titulo")

    assert document_columns(Menos(), Producto, {}) == {"id", "nombre"}

    class ConCalculo(Menos):
        ahorro = fields.Decimal()

    with pytest.raises(ValueError, match="ahorro"):
        document_columns(ConCalculo(), Producto, {})
    declared = {"ahorro": frozenset({"precio", "descuento"})}
    assert document_columns(ConCalculo(), Producto, declared) == {
        "id",
        "nombre",
        "precio",
        "descuento",
    }


# marshmallow's documented hook for a custom field (its docs: "override _serialize").
LIBRARY_HOOKS = {"super()._serialize("}


def test_no_private_name_of_a_library_is_used():
    """Issue 17: `grep -rn "\\._[a-z]" electro_isla` finds none on a library object."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for hit in re.finditer(r"(\S*)\._[a-z]\w*\(?", code):
                if hit.group(1).endswith(("self", "cls")) or hit.group(0) in LIBRARY_HOOKS:
                    continue
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []
