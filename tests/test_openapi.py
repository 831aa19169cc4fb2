"""The OpenAPI document lists every endpoint of the contract (API.md)."""

CONTRACT = {
    "/api/auth/register/": {"post"},
    "/api/auth/login/": {"post"},
    "/api/auth/refresh/": {"post"},
    "/api/auth/logout/": {"post"},
    "/api/productos/": {"get"},
    "/api/productos/{producto_id}/": {"get"},
    "/api/admin/productos/": {"get", "post"},
    "/api/admin/productos/{producto_id}/": {"get", "patch", "delete"},
    "/api/pedidos/": {"post"},
    "/api/mis-pedidos/": {"get"},
    "/api/admin/pedidos/": {"get"},
    "/api/admin/pedidos/{pedido_id}/": {"get", "patch"},
    "/api/admin/pedidos/{pedido_id}/asignar_mensajero/": {"post"},
    "/api/admin/users/": {"get"},
    "/api/admin/users/{usuario_id}/": {"patch"},
    "/api/perfil/": {"get", "patch"},
    "/api/admin/estadisticas/ventas/": {"get"},
    "/api/admin/estadisticas/usuarios/": {"get"},
    "/api/admin/estadisticas/productos/": {"get"},
    "/api/admin/estadisticas/reporte/": {"get"},
    "/api/admin/cache/stats/": {"get"},
    "/api/admin/cache/clear/": {"post"},
    "/healthz": {"get"},
    "/readyz": {"get"},
}


def test_every_contract_endpoint_is_documented(sqlite_app):
    paths = sqlite_app.test_client().get("/api/openapi.json").get_json()["paths"]
    missing = {
        path: sorted(methods - set(paths.get(path, {})))
        for path, methods in CONTRACT.items()
        if methods - set(paths.get(path, {}))
    }
    assert missing == {}


def test_docs_ui_is_served(sqlite_app):
    response = sqlite_app.test_client().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()
