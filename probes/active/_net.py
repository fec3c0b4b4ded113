"""Socket plumbing the packet tests share: raw sockets on the event loop, errno words, addresses.

Every socket is created by the coroutine that uses it, so it belongs to the network namespace
of the thread running the vantage's event loop — that is what makes one process able to test
from many lab namespaces (and from the host itself on a real node) with the same code.
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
import struct
import time
from typing import Callable, TypeVar

from .context import CannotRun

T = TypeVar("T")
SIOCGIFADDR = 0x8915

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "refused",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.ECONNRESET: "reset",
    errno.ETIMEDOUT: "timeout",
    errno.EPERM: "error",      # a local OUTPUT rule rejected it: say so in detail
}


def raw_socket(proto: int) -> socket.socket:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    except PermissionError:
        raise CannotRun("needs root (CAP_NET_RAW) for a raw socket") from None
    s.setblocking(False)
    stamp(s)
    return s


def word(exc: BaseException) -> str:
    """refused / unreachable / reset / timeout / error for an OSError anywhere in the cause chain."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 8:
        if isinstance(cur, (TimeoutError, socket.timeout, asyncio.TimeoutError)):
            return "timeout"
        if isinstance(cur, OSError) and cur.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[cur.errno]
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return "error"


def describe(exc: BaseException) -> str:
    """The innermost cause's message: `[Errno 111] Connection refused`, not the wrapper's."""
    cur, last = exc, exc
    for _ in range(8):
        if cur is None:
            break
        last = cur
        cur = cur.__cause__ or cur.__context__
    return f"{type(last).__name__}: {last}" if str(last) else type(last).__name__


# Classic BPF, hand-assembled: a raw socket sees every packet of its protocol in the namespace
# (every ping, every TCP segment of every concurrent test); filtering in the kernel keeps each
# test's socket buffer for its own answers, so a busy vantage cannot overflow and lose them.
_LDX_MSH, _LDH_IND, _JEQ, _RET = 0xB1, 0x48, 0x15, 0x06
SO_ATTACH_FILTER = 26
ACCEPT, REJECT = 0xFFFF, 0


def _ins(code: int, jt: int = 0, jf: int = 0, k: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def bpf_halfwords(*checks: list[tuple[int, int]]) -> list[bytes]:
    """A program accepting a packet when any check matches; a check is [(offset after the IP header,
    16-bit value), ...] all of which must hold. Offsets assume the quoted header of an ICMP error
    has no IP options (nothing sends them)."""
    prog = [_ins(_LDX_MSH, k=0)]
    body: list[list[tuple[int, int]]] = [list(c) for c in checks]
    # layout: for each check its (ldh, jeq) pairs; a failed jeq jumps to the next check.
    sizes = [2 * len(c) for c in body]
    total = sum(sizes)
    pos = 1
    for i, check in enumerate(body):
        next_check = 1 + sum(sizes[:i + 1])
        for j, (off, val) in enumerate(check):
            prog.append(_ins(_LDH_IND, k=off))
            here = pos + 2 * j + 1
            last = j == len(check) - 1
            accept_at = 1 + total
            jt = (accept_at - here - 1) if last else 0
            jf = (next_check - here - 1) if next_check <= total else (accept_at + 1 - here - 1)
            prog.append(_ins(_JEQ, jt, jf, val))
        pos += sizes[i]
    prog += [_ins(_RET, k=ACCEPT), _ins(_RET, k=REJECT)]
    return prog


def attach(sock: socket.socket, prog: list[bytes]) -> None:
    import ctypes

    buf = ctypes.create_string_buffer(b"".join(prog))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)   # the kernel copies the program


def source_for(dst: str, port: int = 9) -> str:
    """The local address the kernel would use towards dst (connecting a UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.connect((dst, port))
        return u.getsockname()[0]


def iface_of(addr: str) -> str | None:
    """The interface holding IPv4 `addr` in this namespace, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            if socket.inet_ntoa(raw[20:24]) == addr:
                return name
    return None


SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")


def stamp(sock: socket.socket) -> None:
    """Ask the kernel to timestamp arrivals: a reply's latency is then the wire's, not the time this
    process took to get round to it (dozens of vantages share one interpreter and its GIL)."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def _recv_now(sock: socket.socket) -> tuple[bytes, float]:
    data, anc, _flags, _addr = sock.recvmsg(65535, 64)
    for level, typ, raw in anc:
        if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(raw) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack(raw[:_TIMESPEC.size])
            return data, sec + nsec / 1e9
    return data, time.time()


async def readable(sock: socket.socket, read: Callable[[], T]) -> T:
    """read() once the socket has data; read() raises BlockingIOError while there is none.

    A datagram already taken from the socket is never lost to a timeout: if wait_for cancels us
    after the read happened, the result is returned anyway (wait_for then hands it on).
    """
    try:
        return read()
    except BlockingIOError:
        pass
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def ready() -> None:
        if fut.done():
            return
        try:
            fut.set_result(read())
        except BlockingIOError:
            return
        except OSError as exc:
            fut.set_exception(exc)

    loop.add_reader(sock.fileno(), ready)
    try:
        return await fut
    except asyncio.CancelledError:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            return fut.result()
        raise
    finally:
        loop.remove_reader(sock.fileno())


async def _recv(sock: socket.socket) -> tuple[bytes, float]:
    return await readable(sock, lambda: _recv_now(sock))


async def recv_match(sock: socket.socket, deadline: float, match: Callable[[bytes], T | None]
                     ) -> tuple[T, float] | None:
    """Read datagrams until match() returns something: (that, kernel arrival time as time.time()),
    or None when time runs out. Socket errors (ICMP port unreachable on a connected UDP socket) raise.

    An answer that arrived in time counts even if this loop only gets to it late (a busy
    interpreter): at the deadline the socket is drained and arrival stamps decide.
    """
    wall_deadline = time.time() + (deadline - time.monotonic())
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return _drain(sock, wall_deadline, match)
        try:
            data, when = await asyncio.wait_for(_recv(sock), left)
        except asyncio.TimeoutError:
            return _drain(sock, wall_deadline, match)
        hit = match(data)
        if hit is not None:
            return hit, when


def _drain(sock: socket.socket, wall_deadline: float, match: Callable[[bytes], T | None]) -> tuple[T, float] | None:
    while True:
        try:
            data, when = _recv_now(sock)
        except (BlockingIOError, InterruptedError):
            return None
        if when <= wall_deadline and (hit := match(data)) is not None:
            return hit, when


def since(sent: float, arrived: float) -> float:
    """Milliseconds between a time.time() taken just before sending and a kernel arrival stamp."""
    return round(max(0.0, arrived - sent) * 1000, 3)


def tcp_info(sock: socket.socket | None) -> tuple[float, int] | None:
    """(tcpi_rtt in ms, tcpi_total_retrans) of a connected TCP socket: the kernel's own account of
    the handshake, true however late this process looks at it."""
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return None
    if len(info) < 104:
        return None
    return round(struct.unpack_from("I", info, 68)[0] / 1000, 3), struct.unpack_from("I", info, 100)[0]


def tcp_rtt_ms(sock: socket.socket | None) -> float | None:
    info = tcp_info(sock)
    return info[0] if info else None


async def connect(host: str, port: int, timeout: float) -> tuple[socket.socket, float | None, bool]:
    """A connected non-blocking TCP socket: (socket, handshake RTT ms, noticed late).

    If the loop's timer fires first, the kernel is asked whether the handshake had in fact
    completed: a connection established without a retransmitted SYN (so within an RTT, well
    inside the timeout) counts, and is flagged as noticed late. Raises TimeoutError or OSError.
    """
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(s, (host, port)), timeout)
            return s, tcp_rtt_ms(s), False
        except asyncio.TimeoutError:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err)) from None
            try:
                s.getpeername()
            except OSError:
                raise TimeoutError(f"no answer within {timeout:.1f}s") from None
            info = tcp_info(s)
            if info is None or info[1] > 0:
                raise TimeoutError(f"connected only after a retransmitted SYN (> {timeout:.1f}s)") from None
            return s, info[0], True
    except BaseException:
        s.close()
        raise


def ms(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 3)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF
