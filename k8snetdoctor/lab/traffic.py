"""Send real traffic from inside a lab namespace, without starting a process.

Tests, benchmarks and fault demos need "HTTP from this pod", "TCP connect from outside",
"DNS query from that node" many times; doing it on a thread that joined the namespace costs
microseconds instead of a Python start-up per request.
"""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from k8snetdoctor.lab.netns import in_netns


@dataclass
class HttpResult:
    ok: bool
    status: int | None = None
    body: str = ""
    error: str | None = None

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


def http_get(ns: str, host: str, port: int, path: str = "/", timeout: float = 3.0) -> HttpResult:
    """GET http://host:port/path from inside `ns`; errors are returned, not raised."""

    def go() -> HttpResult:
        try:
            with socket.create_connection((host, port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
                chunks = []
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    chunks.append(b)
        except OSError as exc:
            return HttpResult(False, error=_describe(exc))
        raw = b"".join(chunks).decode(errors="replace")
        head, _, body = raw.partition("\r\n\r\n")
        try:
            status = int(head.split()[1])
        except (IndexError, ValueError):
            return HttpResult(False, body=raw, error="not an HTTP response")
        return HttpResult(200 <= status < 400, status, body)

    return in_netns(ns, go, timeout=timeout + 5)


def tcp_connect(ns: str, host: str, port: int, timeout: float = 2.0) -> str:
    """"open", "refused" or "timeout" (or another error string) for a TCP connect from `ns`."""

    def go() -> str:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return "open"
        except OSError as exc:
            return _describe(exc)

    return in_netns(ns, go, timeout=timeout + 5)


def dns_query(ns: str, server: str, name: str, rdtype: str = "A", timeout: float = 3.0,
              tcp: bool = False) -> dict[str, Any]:
    """Ask `server` about `name` from `ns` with dnspython: {"rcode", "answers", "error"}."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    def go() -> dict[str, Any]:
        q = dns.message.make_query(name, rdtype)
        try:
            r = (dns.query.tcp if tcp else dns.query.udp)(q, server, timeout=timeout)
        except dns.exception.Timeout:
            return {"rcode": None, "answers": [], "error": "timeout"}
        except Exception as exc:  # noqa: BLE001 - dnspython raises several types for "no answer"
            return {"rcode": None, "answers": [], "error": f"{type(exc).__name__}: {exc}"}
        answers = [rr.to_text() for rrset in r.answer for rr in rrset if rrset.rdtype == q.question[0].rdtype]
        return {"rcode": dns.rcode.to_text(r.rcode()), "answers": answers, "error": None}

    return in_netns(ns, go, timeout=timeout + 5)


def _describe(exc: OSError) -> str:
    if isinstance(exc, socket.timeout) or "timed out" in str(exc):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    return str(exc) or type(exc).__name__
