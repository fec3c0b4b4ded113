"""HTTP GET to echo endpoints: status, latency and the TCP handshake RTT of a fresh connection.

A minimal HTTP/1.0 client on asyncio's socket calls, not httpx. httpx does work inside a netns thread
(its asyncio backend opens sockets on the loop's thread), but for a probe it is the wrong tool:
~3.3 ms of CPU per GET against ~0.8 ms here (measured in the lab) — and the lab runs every
vantage in one interpreter, where that CPU turns into event-loop lag that makes healthy paths
look like timeouts; the socket error (refused vs unreachable) is buried in its exception chain;
its client reads HTTP_PROXY from the environment unless told not to. A probe needs one request
per fresh connection, the status line and a few bytes of body: HTTP/1.0 with Connection: close.
"""
from __future__ import annotations

import asyncio
import time

from ._net import connect, describe, ms, readable, word
from .context import Context
from .model import Result, Test

MAX_BODY = 64 * 1024


async def fetch(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes, float | None, bool]:
    """(status, body, handshake RTT ms, noticed late) of GET http://host:port/path.

    Raises OSError, TimeoutError or ValueError (not HTTP). When the loop's timer fires before it
    read the answer, whatever the kernel already holds is read before calling it a timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    sock, rtt, late = await connect(host, port, timeout)
    with sock:
        await loop.sock_sendall(sock, f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                                      "User-Agent: netdoctor-active\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while len(raw) < MAX_BODY:
            left = deadline - time.monotonic()
            try:
                chunk = await asyncio.wait_for(readable(sock, lambda: sock.recv(MAX_BODY)), left) if left > 0 else None
            except asyncio.TimeoutError:
                chunk = None
            if chunk is None:                    # time is up: take what already arrived, if anything
                chunk, late = _drain(sock), True
                raw += chunk
                if b"\r\n" not in raw:
                    raise TimeoutError(f"no complete answer within {timeout:.1f}s")
                break
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {raw[:60]!r}")
    return int(parts[1]), body, rtt, late


def _drain(sock) -> bytes:
    out = b""
    while True:
        try:
            chunk = sock.recv(MAX_BODY)
        except (BlockingIOError, InterruptedError):
            return out
        if not chunk:
            return out
        out += chunk


async def get(test: Test, ctx: Context) -> Result:
    """ok (2xx/3xx) / http-error (other status or not HTTP) / refused / unreachable / reset / timeout."""
    timeout = ctx.timeout(ctx.cfg.http_timeout)
    path = test.params.get("path", "/")
    url = f"http://{test.host}:{test.port}{path}"
    t0 = time.monotonic()
    try:
        status, body, rtt, late = await fetch(test.host, int(test.port or 80), path, timeout)
    except (asyncio.TimeoutError, TimeoutError):
        return Result(test, "timeout", None, f"no complete answer within {timeout:.1f}s", {"url": url})
    except ValueError as exc:
        return Result(test, "http-error", ms(t0), str(exc), {"url": url})
    except OSError as exc:
        return Result(test, word(exc), ms(t0), describe(exc), {"url": url})
    latency = ms(t0)
    result = "ok" if 200 <= status < 400 else "http-error"
    text = body[:80].decode(errors="replace").strip()
    return Result(test, result, latency, f"HTTP {status} {text}".strip() + (" (noticed late)" if late else ""),
                  {"url": url, "status": status, "rttMs": rtt})
