"""The HTTP plumbing: read a request, hand it to the control or tenant routes, write the reply."""

from __future__ import annotations

import ipaddress
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import control, routes
from .replies import Incoming, Reply, error_reply
from .tenant import Tenant

MAX_BODY_BYTES = 32 * 1024 * 1024
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


def http_url(host: str, port: int) -> str:
    """The base URL of a server on host:port, e.g. http://127.0.0.1:8765 (no trailing slash)."""
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SimHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that serves one Tenant and never blocks on close."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        tenant: Tenant,
        *,
        verbose: bool = False,
        control_token: str | None = None,
    ) -> None:
        self.tenant = tenant
        self.verbose = verbose
        self.control_token = control_token
        self.loopback = is_loopback(address[0])
        super().__init__(address, SimRequestHandler)
        self.base_url = http_url(address[0], self.server_address[1])


class SimRequestHandler(BaseHTTPRequestHandler):
    """Handles one connection (HTTP/1.1 keep-alive) for the simulated tenant."""

    server: SimHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "NexthinkSimulator/1.0"
    timeout = 30  # idle keep-alive connections give their thread back after this
    # TCP_NODELAY: the headers and the body go out as two writes; with Nagle's algorithm the
    # body waits for the client's delayed ACK of the headers, 40 ms on every keep-alive answer.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        """Answer a GET."""
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        """Answer a POST."""
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        """Answer a PUT (always 404/405: the API has none)."""
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        """Answer a DELETE (always 404/405: the API has none)."""
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        """Answer a PATCH (always 404/405: the API has none)."""
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Log requests only when the simulator is verbose."""
        if self.server.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _incoming(self, raw: bytes) -> Incoming:
        split = urlsplit(self.path)
        request = Incoming(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            raw_body=raw,
        )
        host = self.headers.get("Host")
        request.origin = f"http://{host}" if host else self.server.base_url
        if raw:
            try:
                request.body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                request.json_error = f"body: not valid JSON ({exc})"
        return request

    def _handle(self) -> None:
        tenant = self.server.tenant
        try:
            raw = self._read_body()
        except (ValueError, *_CLIENT_GONE):
            raw = None
        if raw is None:
            self.close_connection = True
            self._send(error_reply(411, "LENGTH_REQUIRED", "Send a Content-Length body."))
            return
        request = self._incoming(raw)
        if request.path.startswith(control.PREFIX):
            refused = control.refusal(
                request, token=self.server.control_token, loopback=self.server.loopback
            )
            reply = refused or control.handle(request, tenant, self.server.base_url)
        else:
            reply = routes.handle(request, tenant)
        if reply.hang:
            # Hold the answer back so the client's read timeout fires; the execution stands.
            self.close_connection = True
            tenant.faults.sleep(reply.hang)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if reply.body:
                self.wfile.write(reply.body)
            self.wfile.flush()
        except _CLIENT_GONE:
            self.close_connection = True
