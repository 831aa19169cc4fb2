"""A reverse proxy that buffers whole responses, as nginx does with proxy_buffering on.

An event stream never completes, so behind it the console sees no event at all:
the case the page must detect by itself (no event within 4 s) and poll instead.
`slow`: paths whose answers it holds that many seconds more (after the app answered);
`held`: paths whose requests it holds that many seconds before the app sees them;
`failing`: paths it answers 502 without asking the app (while they are in the set).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class BufferingProxy:
    def __init__(
        self,
        upstream_port: int,
        slow: Mapping[str, float] | None = None,
        held: Mapping[str, float] | None = None,
    ) -> None:
        upstream = upstream_port
        answers_held = dict(slow or {})
        requests_held = dict(held or {})
        self.failing: set[str] = set()
        failing = self.failing

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                if self.path in failing:
                    self.send_error(502)
                    return
                time.sleep(requests_held.get(self.path, 0))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()  # all of it before a byte goes out
                except (OSError, http.client.HTTPException):
                    self.send_error(502)
                    return
                finally:
                    conn.close()
                time.sleep(answers_held.get(self.path, 0))
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = forward

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BufferingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
