"""Loopback HTTP fault proxy in front of Azurite for the chaos soak (issue 21).

For a share `rate` of requests it injects one fault, chosen at random:
  - `pre503`: answers 503 ServerBusy without forwarding (the storage never saw the request);
  - `lost`:   forwards the request (Azurite applies it), then closes the client connection without an
              answer: a lost response. On a create-if-absent PUT the retry then meets 409 BlobAlreadyExists,
              which the worker must recognise as its own output;
  - `post500`: forwards the request (Azurite applies it), then answers 500 instead of Azurite's answer.
`lost` and `post500` are chosen only for writes (PUT), where a lost answer matters; other requests that draw
them get `pre503`. Counters are kept per kind and per method for the soak's table.
"""
from __future__ import annotations

import http.client
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}


class FaultProxy:
    def __init__(self, upstream_port: int, rate: float, seed: int | None = None, listen_port: int = 0):
        self.upstream_port = upstream_port
        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {"requests": 0, "pre503": 0, "lost": 0, "post500": 0,
                                       "lost_put_if_none_match": 0, "post500_put_if_none_match": 0,
                                       "upstream_errors": 0, "client_resets": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet: thousands of requests
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _answer(self, status: int, code: str) -> None:
                body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
                        f'<Message>injected by the soak fault proxy</Message></Error>').encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-ms-error-code", code)
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                return resp, data

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._draw(self.command)
                if fault == "pre503":
                    self._answer(503, "ServerBusy")
                    return
                try:
                    resp, data = self._forward(body)
                except OSError:
                    proxy._count("upstream_errors")
                    self._answer(502, "UpstreamUnavailable")
                    return
                if fault in ("lost", "post500") and self.headers.get("If-None-Match") == "*":
                    proxy._count(f"{fault}_put_if_none_match")
                if fault == "lost":
                    # Azurite applied the write; the client never learns it.
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault == "post500":
                    self._answer(500, "InternalError")
                    return
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in HOP_BY_HOP or k.lower() == "content-length":
                        continue
                    self.send_header(k, v)
                if self.command == "HEAD":
                    self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD" and data:
                    self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = do_OPTIONS = do_PATCH = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                # A worker killed with -9 mid-request resets its connections: expected here, counted, not printed.
                proxy._count("client_resets")

        self.server = Server(("127.0.0.1", listen_port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    def _count(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def _draw(self, method: str) -> str | None:
        with self.lock:
            self.counts["requests"] += 1
            if self.rng.random() >= self.rate:
                return None
            kind = self.rng.choice(("pre503", "lost", "post500"))
            if method != "PUT":
                kind = "pre503"
            self.counts[kind] += 1
            self.counts[f"{kind}:{method}"] = self.counts.get(f"{kind}:{method}", 0) + 1
            return kind

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def set_rate(self, rate: float) -> None:
        with self.lock:
            self.rate = rate

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
