"""The encapsulated VXLAN echo: proof that a peer's VTEP accepts our VXLAN packets and answers.

A bare UDP datagram to 8472 cannot tell open from filtered (the VXLAN socket never answers).
So this sends what flannel would: to the peer's underlay address, UDP 8472, a VXLAN header
with the VNI, and an inner Ethernet frame to the peer's VTEP MAC carrying an ICMP echo from our
flannel.1 address to the peer's. The peer's kernel decapsulates it and its reply comes back
encapsulated, from a hashed UDP source port — which is why sr1 cannot match it and the reply
is caught by a packet socket with a BPF filter (peer address, UDP 8472) instead.

Two observations per echo, so the broken direction shows:
- the encapsulated reply seen on our wire (packet sockets see it before any local firewall):
  the peer received our request and its return path works -> "reply"; none -> "no-reply";
- the decapsulated inner reply reaching our own ICMP stack: when the wire shows the reply but
  the stack never gets it, our node drops inbound VXLAN from that peer -> "reply-dropped-locally".
What it does not prove: the request is built here, not by our flannel.1, so our own device's
encapsulation (VNI, offload/checksum bugs) is exercised only by the peer's reply path, and our
FDB/neighbour entries for the peer not at all (node facts cover those).
The request is sent from an ordinary UDP socket (so the kernel routes it in this namespace) and
captured on a packet socket opened on this thread: scapy's AsyncSniffer would resolve interface
names against scapy's interface table, read once from the namespace that imported scapy.
"""
from __future__ import annotations

import asyncio
import ctypes
import random
import socket
import struct
import time

from ._net import attach, bpf_halfwords, iface_of, raw_socket, recv_match, since, source_for, stamp
from .context import CannotRun, Context
from .icmp import ECHO_REPLY
from .model import Result, Test

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
DELIVERY_GRACE = 0.25   # s to wait for the decapsulated reply once the wire showed it


def _scapy():
    try:
        from scapy.arch.common import compile_filter
        from scapy.data import DLT_EN10MB
        from scapy.layers.inet import ICMP, IP, UDP
        from scapy.layers.l2 import Ether
        from scapy.layers.vxlan import VXLAN
    except ImportError as exc:
        raise CannotRun(f"scapy is not importable ({exc}); the VXLAN echo needs it") from None
    return compile_filter, DLT_EN10MB, Ether, IP, UDP, ICMP, VXLAN


def vxlan_payload(p: dict, ident: int, seq: int) -> bytes:
    """VXLAN header + inner frame, i.e. the UDP payload flannel.1 would send for this ping."""
    _, _, Ether, IP, _, ICMP, VXLAN = _scapy()
    inner = (Ether(src=p["srcVtepMac"], dst=p["dstVtepMac"]) / IP(src=p["srcVtepIp"], dst=p["dstVtepIp"])
             / ICMP(id=ident, seq=seq) / b"netdoctor-vxlan-echo")
    return bytes(VXLAN(flags=0x08, vni=int(p["vni"])) / inner)


def match_reply(frame: bytes, peer: str, port: int, p: dict, ident: int, seq: int) -> dict | None:
    """The peer's encapsulated echo reply in a captured Ethernet frame, else None."""
    _, _, Ether, IP, UDP, ICMP, VXLAN = _scapy()
    pkt = Ether(frame)
    if IP not in pkt or UDP not in pkt or pkt[IP].src != peer or pkt[UDP].dport != port:
        return None
    raw = bytes(pkt[UDP].payload)
    if len(raw) < 8 + 14:
        return None
    inner = Ether(raw[8:])
    if IP not in inner or ICMP not in inner:
        return None
    ii, ic = inner[IP], inner[ICMP]
    if (ii.src, ii.dst, ic.type, ic.id, ic.seq) != (p["dstVtepIp"], p["srcVtepIp"], ECHO_REPLY, ident, seq):
        return None
    return {"vni": int.from_bytes(raw[4:7], "big"), "srcPort": int(pkt[UDP].sport), "innerSrcMac": inner.src}


def _capture_socket(bpf_text: str, iface: str | None) -> socket.socket:
    """A packet socket that only ever queues our reply: the filter is compiled first and attached
    before the socket is bound, and whatever slipped in before that is drained."""
    compile_filter, DLT_EN10MB, *_ = _scapy()
    try:
        prog = compile_filter(bpf_text, linktype=DLT_EN10MB)
    except Exception as exc:  # noqa: BLE001 - ImportError/OSError/Scapy_Exception: libpcap missing or broken
        raise CannotRun(f"cannot compile the capture filter (libpcap): {exc}") from None
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)   # protocol 0: receives nothing until bound
    except PermissionError:
        raise CannotRun("needs root (CAP_NET_RAW) to capture the encapsulated reply") from None
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                 struct.pack("HL", prog.bf_len, ctypes.addressof(prog.bf_insns.contents)))
    s.bind((iface or "", ETH_P_ALL))
    s.setblocking(False)
    while True:
        try:
            s.recv(65535)
        except (BlockingIOError, InterruptedError):
            break
    stamp(s)
    return s


def _inner_delivered(data: bytes, p: dict, ident: int, seq: int) -> bool | None:
    ihl = (data[0] & 0x0F) * 4
    if socket.inet_ntoa(data[12:16]) != p["dstVtepIp"] or len(data) < ihl + 8 or data[ihl] != ECHO_REPLY:
        return None
    return True if struct.unpack("!HH", data[ihl + 4:ihl + 8]) == (ident, seq) else None


async def echo(test: Test, ctx: Context) -> Result:
    p, peer, port = test.params, test.host, int(test.port or 8472)
    loop = asyncio.get_running_loop()
    timeout = ctx.timeout(ctx.cfg.vxlan_timeout)
    ident, seq = random.randrange(1, 0xFFFF), random.randrange(1, 0xFFFF)
    payload = vxlan_payload(p, ident, seq)
    src = source_for(peer, port)
    ifaces = ctx.shared.setdefault("ifaceOf", {})
    iface = ifaces[src] if src in ifaces else ifaces.setdefault(src, iface_of(src))
    extra = {"vni": p["vni"], "source": src, "captureIface": iface}
    # Outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 + IP 20: the inner ICMP at 84.
    # Matching our echo id in the kernel keeps the peer's real overlay traffic out of this socket.
    flt = f"udp dst port {port} and src host {peer} and ether[84] = 0 and ether[88:2] = {ident} and ether[90:2] = {seq}"
    cap = _capture_socket(flt, iface)
    try:
        with raw_socket(socket.IPPROTO_ICMP) as stack, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            attach(stack, bpf_halfwords([(4, ident)]))
            udp.setblocking(False)
            t0, sent = time.monotonic(), time.time()
            await loop.sock_sendto(udp, payload, (peer, port))
            wire = await recv_match(cap, t0 + timeout, lambda f: match_reply(f, peer, port, p, ident, seq))
            # Decapsulation follows the wire within microseconds and the filtered socket has kept it;
            # the grace only covers a reply still in flight through our stack.
            got = await recv_match(stack, time.monotonic() + DELIVERY_GRACE,
                                   lambda d: _inner_delivered(d, p, ident, seq)) if wire else None
    finally:
        # Closing a packet socket waits for an RCU grace period (tens of ms): not on the event loop.
        await loop.run_in_executor(None, cap.close)
    if wire is None:
        return Result(test, "no-reply", None, f"no encapsulated reply from {peer} within {timeout:.1f}s "
                      "(request or reply lost: the peer's VXLAN port, VNI or VTEP MAC, or the path)",
                      {**extra, "delivered": None})
    reply, arrived = wire
    rtt = since(sent, arrived)
    extra.update(reply, delivered=bool(got))
    if not got:
        return Result(test, "reply-dropped-locally", rtt,
                      f"{peer} answered (seen on the wire from UDP port {reply['srcPort']}), but this node's stack "
                      f"never received the decapsulated reply: inbound VXLAN from {peer} is dropped here", extra)
    return Result(test, "reply", rtt, f"encapsulated echo reply from {peer} (VNI {reply['vni']})", extra)
