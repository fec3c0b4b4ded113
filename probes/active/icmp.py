"""ICMP echo from a raw socket, optionally with Don't Fragment at a chosen packet size.

Raw sockets rather than the `ping` binary: no process per probe (a 10-node mesh is hundreds of
pings), the reply, an ICMP error and a local EMSGSIZE are told apart from Python, and the
socket lives in whatever namespace the vantage's thread is in. The packet is built and parsed
with struct: echo is 8 bytes of header, and scapy is not needed for it (it stays optional).
"""
from __future__ import annotations

import errno
import random
import socket
import struct
import time
from dataclasses import dataclass

from ._net import attach, bpf_halfwords, checksum, raw_socket, recv_match, since
from .context import Context
from .model import Result, Test

ECHO_REPLY, UNREACH, ECHO, TIME_EXCEEDED = 0, 3, 8, 11
FRAG_NEEDED = 4
IP_MTU_DISCOVER, IP_PMTUDISC_PROBE, IP_MTU = 10, 3, 14
HEADERS = 28                       # IPv4 (20) + ICMP (8)
DEFAULT_SIZE = 84                  # what `ping` sends: 56 bytes of payload


@dataclass
class Echo:
    result: str                    # ok | too-big | timeout | unreachable | error
    latency_ms: float | None = None
    detail: str = ""
    route_mtu: int | None = None   # the kernel's MTU towards the host (device or cached path MTU)
    reported_mtu: int | None = None  # next-hop MTU of an ICMP "fragmentation needed"
    icmp_from: str | None = None   # who sent the ICMP error


def build_echo(ident: int, seq: int, payload_len: int) -> bytes:
    payload = (b"netdoctor-" * (payload_len // 10 + 1))[:payload_len]
    head = struct.pack("!BBHHH", ECHO, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO, 0, checksum(head + payload), ident, seq) + payload


def parse(data: bytes, host: str, ident: int, seq: int) -> Echo | None:
    """Our echo reply, or an ICMP error quoting our request; None for anyone else's ICMP."""
    if len(data) < 28:
        return None
    ihl = (data[0] & 0x0F) * 4
    src = socket.inet_ntoa(data[12:16])
    icmp = data[ihl:]
    if len(icmp) < 8:
        return None
    typ, code = icmp[0], icmp[1]
    if typ == ECHO_REPLY:
        rid, rseq = struct.unpack("!HH", icmp[4:8])
        return Echo("ok", icmp_from=src) if (rid, rseq, src) == (ident, seq, host) else None
    if typ not in (UNREACH, TIME_EXCEEDED):
        return None
    inner = icmp[8:]
    if len(inner) < 28:
        return None
    iihl = (inner[0] & 0x0F) * 4
    if inner[9] != socket.IPPROTO_ICMP or socket.inet_ntoa(inner[16:20]) != host or len(inner) < iihl + 8:
        return None
    if struct.unpack("!HH", inner[iihl + 4:iihl + 8]) != (ident, seq):
        return None
    if typ == UNREACH and code == FRAG_NEEDED:
        mtu = struct.unpack("!H", icmp[6:8])[0]
        return Echo("too-big", detail=f"ICMP fragmentation needed from {src}, next-hop MTU {mtu}",
                    reported_mtu=mtu, icmp_from=src)
    what = "unreachable" if typ == UNREACH else "time exceeded"
    return Echo("unreachable", detail=f"ICMP {what} {typ}/{code} from {src}", icmp_from=src)


async def echo(host: str, timeout: float, *, size: int = DEFAULT_SIZE, df: bool = False) -> Echo:
    """One echo request of `size` bytes on the wire (IP header included); DF set when df."""
    import asyncio

    loop = asyncio.get_running_loop()
    ident, seq = random.randrange(1, 0xFFFF), random.randrange(1, 0xFFFF)
    route_mtu = _route_mtu(host)
    with raw_socket(socket.IPPROTO_ICMP) as s:
        attach(s, bpf_halfwords([(4, ident)], [(32, ident)]))   # our reply, or an error quoting our request
        # Not connected: a connected raw socket takes every ICMP error about its peer as its own
        # (a concurrent probe's "fragmentation needed" would fail this one); parse() matches ours.
        if df:   # PROBE: DF set, but a path MTU cached by earlier tests does not pre-empt this one
            s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
        t0, sent = time.monotonic(), time.time()
        try:
            await loop.sock_sendto(s, build_echo(ident, seq, max(0, size - HEADERS)), (host, 0))
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                return Echo("too-big", None, f"not sent: {size} bytes exceed the local route MTU {route_mtu} "
                            "(EMSGSIZE)", route_mtu=route_mtu)
            word = {errno.EHOSTUNREACH: "unreachable", errno.ENETUNREACH: "unreachable"}.get(exc.errno, "error")
            return Echo(word, None, f"send failed: {exc}", route_mtu=route_mtu)
        got = await recv_match(s, t0 + timeout, lambda d: parse(d, host, ident, seq))
    if got is None:
        return Echo("timeout", None, f"no reply within {timeout:.1f}s", route_mtu=route_mtu)
    echo_, arrived = got
    echo_.latency_ms, echo_.route_mtu = since(sent, arrived), route_mtu
    return echo_


def _route_mtu(host: str) -> int | None:
    """The kernel's MTU towards host: the device's, or a smaller path MTU it has learned."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.connect((host, 9))
            return u.getsockopt(socket.IPPROTO_IP, IP_MTU)
    except OSError:
        return None


async def run(test: Test, ctx: Context) -> Result:
    """Plain reachability ping (conn kind): ok / unreachable / timeout."""
    e = await echo(test.host, ctx.timeout(ctx.cfg.icmp_timeout))
    return Result(test, e.result, e.latency_ms, e.detail)
