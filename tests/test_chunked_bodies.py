"""A chunked body (Transfer-Encoding: chunked, no Content-Length) gets the checks any body gets.

Through the test client, werkzeug's server and gunicorn: both servers hand the
app a chunked body to read to its end, which the app used to parse without the
nesting and lone-surrogate checks (a 500 with a traceback).
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from electro_isla_testing.gunicorn import GunicornServer
from tests.helpers import error_keys, user_with_role

DEEP = "[" * 200_000
SURROGATE = '{"username": "a\\ud800", "password": "x"}'


def _chunked(client, body: str):  # noqa: ANN001, ANN202
    return client.post(
        "/api/auth/login/",
        input_stream=io.BytesIO(body.encode()),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        # What a server that decoded the chunks says: read the stream to its end.
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_deep_chunked_body_is_a_400_envelope(client):
    response = _chunked(client, DEEP)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.get_json()["code"] == 400


def test_a_lone_surrogate_in_a_chunked_body_is_a_422_naming_the_field(client):
    response = _chunked(client, SURROGATE)
    assert response.status_code == 422
    assert error_keys(response) == {"username"}


def _padded(length: int) -> str:
    """A valid PATCH body of /api/perfil/ (a new last_name), spaces up to `length` bytes."""
    body = '{"last_name": "Cortado"}'
    return body + " " * (length - len(body))


@pytest.mark.parametrize("over", [1, 100_000])
def test_a_chunked_body_past_the_limit_is_a_413_and_writes_nothing(client, app, over):
    """werkzeug stops reading at MAX_CONTENT_LENGTH: the first MiB, valid JSON on
    its own, was applied (200) where a Content-Length body that size is a 413."""
    _uid, headers = user_with_role(app, "cliente", last_name="Antes")
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.patch(
        "/api/perfil/",
        input_stream=io.BytesIO(_padded(limit + over).encode()),
        headers={**headers, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413, response.get_data(as_text=True)[:200]
    assert response.get_json()["code"] == 413
    assert client.get("/api/perfil/", headers=headers).get_json()["last_name"] == "Antes"


def test_a_chunked_body_of_exactly_the_limit_is_read(client, app):
    _uid, headers = user_with_role(app, "cliente", last_name="Antes")
    response = client.patch(
        "/api/perfil/",
        input_stream=io.BytesIO(_padded(app.config["MAX_CONTENT_LENGTH"]).encode()),
        headers={**headers, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:200]
    assert response.get_json()["last_name"] == "Cortado"


def _post_chunked(
    host: str,
    port: int,
    body: str,
    path: str = "/api/auth/login/",
    method: str = "POST",
    **headers: str,
) -> tuple[int, dict]:
    """A request over a socket, the body in 8 KiB chunks."""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    data = body.encode()
    chunks = (data[i : i + 8192] for i in range(0, len(data), 8192))
    try:
        connection.request(
            method,
            path,
            body=chunks,
            headers={"Content-Type": "application/json", **headers},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def werkzeug_server(app) -> Iterator[tuple[str, int]]:  # noqa: ANN001
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_port
    server.shutdown()
    thread.join(timeout=10)


def test_chunked_bodies_through_werkzeug_serving(werkzeug_server):
    status, payload = _post_chunked(*werkzeug_server, DEEP)
    assert (status, payload["code"]) == (400, 400)
    status, payload = _post_chunked(*werkzeug_server, SURROGATE)
    assert status == 422 and set(payload["errors"]) == {"username"}


def test_a_body_of_exactly_the_limit_with_content_length_is_answered(app, werkzeug_server):
    """A reviewer's probe: the chunked-body check also read one byte past a
    Content-Length body of exactly MAX_CONTENT_LENGTH bytes, and werkzeug's server
    (make run) waited on the socket for it: the client timed out."""
    body = ('{"username": "nadie", "password": "x"}').ljust(app.config["MAX_CONTENT_LENGTH"])
    connection = http.client.HTTPConnection(*werkzeug_server, timeout=10)
    try:
        connection.request(
            "POST", "/api/auth/login/", body=body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        assert response.status == 401, response.read()[:200]
    finally:
        connection.close()


def test_chunked_bodies_through_gunicorn(_schema, app, client):
    # The app's signing key: the PATCH is authenticated before its body is read.
    secret = {"SECRET_KEY": app.config["SECRET_KEY"]}
    server = GunicornServer(_schema, None, workers=1, threads=2, extra_env=secret).start()
    try:
        status, payload = _post_chunked("127.0.0.1", server.port, DEEP)
        assert (status, payload["code"]) == (400, 400), server.errors_logged()
        status, payload = _post_chunked("127.0.0.1", server.port, SURROGATE)
        assert status == 422 and set(payload["errors"]) == {"username"}
        __uid, headers = user_with_role(app, "cliente", last_name="Antes")
        status, payload = _post_chunked(
            "127.0.0.1",
            server.port,
            _padded(app.config["MAX_CONTENT_LENGTH"] + 1),
            "/api/perfil/",
            "PATCH",
            **headers,
        )
        assert (status, payload["code"]) == (413, 413)
        assert client.get("/api/perfil/", headers=headers).get_json()["last_name"] == "Antes"
        assert "Traceback" not in server.log_tail(200)
    finally:
        server.stop()


class _ChunkError(Exception):
    """As gunicorn's http.errors.ParseException: neither an OSError nor a ValueError."""


class _Unreadable(io.BytesIO):
    """A server's decoded input that cannot decode the client's chunks."""

    def read(self, size: int | None = -1) -> bytes:
        raise _ChunkError("Invalid chunk size: 'zz'")

    def readinto(self, buffer) -> int:  # noqa: ANN001
        raise _ChunkError("Invalid chunk size: 'zz'")


def test_a_body_the_server_cannot_decode_is_a_400_envelope(client):
    response = client.post(
        "/api/auth/login/",
        input_stream=_Unreadable(),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.get_json()["message"] == (
        "The request body could not be read: its encoding is malformed."
    )


MALFORMED_CHUNKS = {
    "size not hex": b"zz\r\nabc\r\n0\r\n\r\n",
    "negative size": b"-2\r\n{}\r\n0\r\n\r\n",
    "no terminator": b"2\r\n{}XX0\r\n\r\n",
    "bad trailer": b"2\r\n{}\r\n0\r\nBad Trailer: x\r\n\r\n",
}


def _raw(port: int, path: str, chunks: bytes) -> tuple[int, dict]:
    """A chunked request whose chunks are `chunks` as sent, over a socket."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + chunks)
        answer = b""
        while block := sock.recv(65536):
            answer += block
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_malformed_chunks_through_gunicorn_are_400s_without_a_traceback(_schema):
    """A probe: each of these gave a 500 and an ERROR traceback (gunicorn's reader raises
    InvalidChunkSize, ChunkMissingTerminator or InvalidHeaderName into the app)."""
    server = GunicornServer(_schema, None, workers=1, threads=2).start()
    try:
        for name, chunks in MALFORMED_CHUNKS.items():
            status, payload = _raw(server.port, "/api/auth/login/", chunks)
            assert (status, payload["code"]) == (400, 400), (name, payload)
        assert "Traceback" not in server.log_tail(200)
    finally:
        server.stop()


def test_an_empty_chunked_body_is_no_body(client, app):  # noqa: ANN001
    """A bodiless POST a client happened to send chunked keeps answering as without a body."""
    response = client.post(
        "/api/auth/logout/",
        input_stream=io.BytesIO(b""),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 401  # no token: not a 415 for a body never sent
