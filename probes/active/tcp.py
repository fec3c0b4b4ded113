"""TCP reachability two ways: a full connect, and a half-open SYN that classifies the port.

A connect needs no privilege, which is why pod vantages use it; but "timeout" alone cannot
say whether a firewall dropped the SYN or an ICMP error was swallowed. The SYN probe reads
the raw answer: SYN-ACK = open, RST = closed (nothing listens, or REJECT --reject-with
tcp-reset), no answer or an ICMP unreachable = filtered (a DROP, or a REJECT with ICMP) — the
distinction kubelet exposure (FM-39) and control-plane reachability (FM-34/36) turn on.
scapy builds the SYN and dissects the replies; the kernel routes them (a raw IPPROTO_TCP
socket), because scapy's own routing table is read once from the namespace that imported it.
"""
from __future__ import annotations

import asyncio
import errno
import random
import socket
import struct
import time

from ._net import attach, bpf_halfwords, describe, ms, raw_socket, recv_match, since, source_for, word
from ._net import connect as net_connect
from .context import CannotRun, Context
from .model import Result, Test


async def connect(test: Test, ctx: Context) -> Result:
    """open / refused / timeout / unreachable (a full three-way handshake, then close).

    latencyMs of an open port is the kernel's handshake RTT (TCP_INFO), not this loop's view of it.
    """
    timeout = ctx.timeout(ctx.cfg.connect_timeout)
    t0 = time.monotonic()
    try:
        sock, rtt, late = await net_connect(test.host, int(test.port or 0), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        w = word(exc)
        detail = f"no answer within {timeout:.1f}s" if w == "timeout" else describe(exc)
        return Result(test, w, ms(t0) if w != "timeout" else None, detail)
    sock.close()
    return Result(test, "open", rtt if rtt is not None else ms(t0),
                  "handshake completed" + (" (noticed after the loop's timeout: kernel says in time)" if late else ""))


def _scapy():
    try:
        from scapy.layers.inet import ICMP, IP, TCP, IPerror, TCPerror
    except ImportError as exc:  # scapy is a dependency, but a stripped image may lack it
        raise CannotRun(f"scapy is not importable ({exc}); SYN classification needs it") from None
    return IP, TCP, ICMP, IPerror, TCPerror


def classify(data: bytes, host: str, port: int, sport: int) -> tuple[str, str] | None:
    """(result, detail) for a packet answering our SYN, else None."""
    if len(data) < 28 or data[9] not in (socket.IPPROTO_TCP, socket.IPPROTO_ICMP):
        return None
    if data[9] == socket.IPPROTO_TCP:   # cheap test first: a raw TCP socket sees every segment in the netns
        ihl = (data[0] & 0x0F) * 4
        if socket.inet_ntoa(data[12:16]) != host or data[ihl:ihl + 4] != struct.pack("!HH", port, sport):
            return None
    IP, TCP, ICMP, IPerror, TCPerror = _scapy()
    pkt = IP(data)
    if TCP in pkt and pkt.src == host and pkt[TCP].sport == port and pkt[TCP].dport == sport:
        flags = pkt[TCP].flags
        if flags.S and flags.A:
            return "open", "SYN-ACK"
        if flags.R:
            return "closed", f"RST ({flags})"
        return None
    if ICMP in pkt and pkt[ICMP].type == 3 and TCPerror in pkt:
        inner_ip, inner = pkt[IPerror], pkt[TCPerror]
        if inner_ip.dst == host and inner.dport == port and inner.sport == sport:
            return "filtered", f"ICMP unreachable {pkt[ICMP].type}/{pkt[ICMP].code} from {pkt.src}"
    return None


async def syn(test: Test, ctx: Context) -> Result:
    """open (SYN-ACK) / closed (RST) / filtered (silence or ICMP unreachable)."""
    IP, TCP, *_ = _scapy()
    loop = asyncio.get_running_loop()
    timeout = ctx.timeout(ctx.cfg.syn_timeout)
    host, port = test.host, int(test.port or 0)
    src = source_for(host, port)
    sport = random.randrange(32768, 61000)
    segment = bytes(IP(src=src, dst=host) / TCP(sport=sport, dport=port, flags="S",
                                               seq=random.randrange(1, 2**32)))[20:]
    with raw_socket(socket.IPPROTO_TCP) as tcp_sock, raw_socket(socket.IPPROTO_ICMP) as icmp_sock:
        attach(tcp_sock, bpf_halfwords([(0, port), (2, sport)]))          # segments from host:port to us
        attach(icmp_sock, bpf_halfwords([(28, sport), (30, port)]))       # errors quoting our SYN
        t0, sent = time.monotonic(), time.time()
        try:
            await loop.sock_sendto(tcp_sock, segment, (host, 0))
        except OSError as exc:   # EPERM: this host's own OUTPUT rules refused it
            blocked = exc.errno in (errno.EPERM, errno.EHOSTUNREACH, errno.ENETUNREACH)
            return Result(test, "filtered" if blocked else "error", None, f"SYN not sent: {exc}", {"source": src})
        deadline = t0 + timeout
        match = lambda d: classify(d, host, port, sport)  # noqa: E731
        tasks = [asyncio.ensure_future(recv_match(s, deadline, match)) for s in (tcp_sock, icmp_sock)]
        hit = None
        try:
            for fut in asyncio.as_completed(tasks):
                hit = await fut
                if hit is not None:
                    break
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    if hit is None:
        return Result(test, "filtered", None, f"no answer to SYN within {timeout:.1f}s", {"source": src})
    (result, detail), arrived = hit
    return Result(test, result, since(sent, arrived), detail, {"source": src})
