"""Listening TCP and bound UDP sockets, from /proc/net/{tcp,tcp6,udp,udp6}.

Whether kubelet (10250), the VXLAN port (8472/udp), CoreDNS or a NodePort answer on a node
starts with whether anything listens there. Reading /proc/net directly needs no `ss` binary
in the probe image; the hex addresses are decoded here. Process names come from matching
socket inodes against /proc/<pid>/fd links: best effort (needs hostPID and privileges; in a
plain container only the probe's own processes are visible, and process is then null).

A NodePort served by iptables has no listening socket at all; that is expected and the
nodeport rule explains it, so absence of a port here is not by itself a fault.
"""
from __future__ import annotations

import os
import socket
import struct
import time

from k8snetdoctor.model import Evidence

from ._common import CollectError, evidence, read_proc

KIND = "sockets"

FILES = (("tcp", "tcp", 4), ("tcp", "tcp6", 6), ("udp", "udp", 4), ("udp", "udp6", 6))
TCP_LISTEN = "0A"
UDP_UNCONN = "07"  # TCP_CLOSE in the kernel's state numbering: a bound, unconnected UDP socket
PROCESS_SCAN_BUDGET = 2.0  # seconds; a node with many processes must not stall the probe


def decode_addr(hexaddr: str) -> tuple[str, int]:
    """`0100007F:0016` -> ("127.0.0.1", 22). The kernel prints each 32-bit word in host order."""
    host, port = hexaddr.split(":")
    raw = bytes.fromhex(host)
    words = struct.unpack("<" + "I" * (len(raw) // 4), raw)
    packed = struct.pack(">" + "I" * len(words), *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed), int(port, 16)  # as `ss` prints (::ffff:1.2.3.4)


def parse_proc_net(text: str, proto: str) -> list[dict]:
    """Listening (tcp) or unconnected (udp) sockets of one /proc/net file, with their inode."""
    wanted = TCP_LISTEN if proto == "tcp" else UDP_UNCONN
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10 or f[3].upper() != wanted:
            continue
        try:
            local, port = decode_addr(f[1])
        except (ValueError, struct.error):
            continue
        out.append({"proto": proto, "local": local, "port": port,
                    "state": "LISTEN" if proto == "tcp" else "UNCONN", "process": None, "inode": int(f[9])})
    return out


def socket_owners(inodes: set[int], proc: str = "/proc", budget: float = PROCESS_SCAN_BUDGET) -> dict[int, str]:
    """inode -> process name (`comm`), for the inodes asked about; stops at the time budget."""
    owners: dict[int, str] = {}
    if not inodes:
        return owners
    deadline = time.monotonic() + budget
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        if time.monotonic() > deadline or len(owners) == len(inodes):
            break
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inode = int(link[8:-1])
                if inode in inodes and inode not in owners:
                    try:
                        with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as fh:
                            owners[inode] = fh.read().strip()
                    except OSError:
                        pass
    return owners


def collect_sockets(node: str | None, netns: str | None = None) -> list[Evidence]:
    """Sockets of the reader's network namespace (the node's, in a hostNetwork probe)."""
    found: list[dict] = []
    read: list[str] = []
    problems: list[str] = []
    for proto, name, _family in FILES:
        path = f"/proc/net/{name}"
        try:
            text = read_proc(path, netns=netns)
        except CollectError as exc:
            problems.append(str(exc))
            continue
        if text is None:  # tcp6/udp6 are absent when IPv6 is disabled: not a problem
            continue
        read.append(name)
        found.extend(parse_proc_net(text, proto))
    source = (f"ip netns exec {netns} cat " if netns else "") + "/proc/net/{" + ",".join(n for _, n, _ in FILES) + "}"
    if not read:
        return [evidence(KIND, node, source,
                         error="; ".join(problems) or "no /proc/net/tcp or udp file could be read")]
    owners = socket_owners({s["inode"] for s in found})
    seen: set[tuple] = set()
    data = []
    for s in found:
        s["process"] = owners.get(s.pop("inode"))
        key = (s["proto"], s["local"], s["port"], s["process"])
        if key not in seen:  # SO_REUSEPORT workers show one socket each; one line says enough
            seen.add(key)
            data.append(s)
    data.sort(key=lambda s: (s["proto"], s["port"], s["local"]))
    excerpt = "\n".join(_ss_line(s) for s in data)
    if problems:
        excerpt += "\n" + "\n".join(f"# {p}" for p in problems)
    return [evidence(KIND, node, source, data=data, excerpt=excerpt)]


def _ss_line(s: dict) -> str:
    """Like `ss -tulpn`: proto, state, local address:port, process."""
    host = f"[{s['local']}]" if ":" in s["local"] else s["local"]
    proc = f'  users:(("{s["process"]}"))' if s["process"] else ""
    return f"{s['proto']:<4} {s['state']:<7} {host}:{s['port']}{proc}"
