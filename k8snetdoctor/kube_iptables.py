"""What kube-proxy's iptables rules mean, read from a parsed dump (see iptables.py).

Names kube-proxy's own structures (KUBE-NODEPORTS entries, the KUBE-EXT -> KUBE-SVC/KUBE-SVL
-> KUBE-SEP graph, the last rule of KUBE-SERVICES, the "has no endpoints" REJECT/DROP rules)
so checks ask questions instead of grepping, and one place knows how the format changed
across versions (KUBE-XLB before 1.24, KUBE-EXT after; ipset rules in IPVS mode).
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from .iptables import IptRule, Ruleset

ProxyMode = Literal["iptables", "ipvs"]


def is_kube_chain(name: str) -> bool:
    return name.startswith("KUBE-")


def kube_rule_count(rs: Ruleset) -> int:
    """Rules in KUBE-* chains: the same number as `grep -c '^-A KUBE-'` (FM-12's test)."""
    return sum(1 for r in rs.all_rules() if is_kube_chain(r.chain))


def chain_hash(ref: str, protocol: str) -> str:
    """kube-proxy's portProtoHash: the suffix shared by KUBE-SVC/EXT/SVL/FW chains of one port.

    Lets a check find a Service's chains by name even where no rule carries its comment.
    """
    digest = hashlib.sha256((ref + protocol.lower()).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def proxy_mode(rs: Ruleset) -> ProxyMode | None:
    """Which kube-proxy mode wrote these rules; None when kube-proxy wrote none.

    kubelet creates KUBE-MARK-*/KUBE-FIREWALL chains on its own, so only nat KUBE-SERVICES
    counts. IPVS mode matches ipsets there (`--match-set KUBE-CLUSTER-IP`) and adds
    KUBE-NODE-PORT; iptables mode has per-Service chains and the KUBE-NODEPORTS jump.
    """
    nat = rs.tables.get("nat")
    if nat is None or "KUBE-SERVICES" not in nat.chains:
        return None
    if "KUBE-NODE-PORT" in nat.chains or "KUBE-LOAD-BALANCER" in nat.chains or any(
            "--match-set KUBE-" in r.line for r in nat.chains["KUBE-SERVICES"].rules):
        return "ipvs"
    if nat.chains["KUBE-SERVICES"].rules or any(n.startswith("KUBE-SVC-") for n in nat.chains):
        return "iptables"
    return None


@dataclass(frozen=True)
class NodePortEntry:
    protocol: str
    port: int
    service: str | None  # the comment: "ns/svc:port" (pre-1.24 unnamed ports: "ns/svc:")
    target: str
    rule: IptRule


def nodeport_entries(rs: Ruleset) -> list[NodePortEntry]:
    """nat KUBE-NODEPORTS rules that route a port (pre-1.24 KUBE-MARK-MASQ companions skipped)."""
    out = []
    for r in rs.rules("nat", "KUBE-NODEPORTS"):
        if r.dport is None or not r.target or r.target.startswith("KUBE-MARK-"):
            continue
        out.append(NodePortEntry(r.protocol or "tcp", r.dport, r.comment, r.target, r))
    return out


@dataclass
class ServicePath:
    """What a chain leads to: every DNAT endpoint reachable, and the rules walked to get there."""

    start: str
    chains: list[str] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)  # KUBE-SEP chain -> "ip:port"
    lines: list[str] = field(default_factory=list)

    @property
    def endpoints(self) -> set[str]:
        return set(self.targets.values())

    @property
    def ips(self) -> set[str]:
        return {t.rsplit(":", 1)[0] for t in self.targets.values()}


def follow(rs: Ruleset, start: str, table: str = "nat", seps_only: bool = False) -> ServicePath:
    """Walk jumps from `start` through KUBE-* chains (not KUBE-MARK-*) to the DNAT rules.

    `seps_only` follows only jumps to KUBE-SEP-*, which gives the node-local endpoints of a
    KUBE-SVL chain without drifting into the cluster-wide KUBE-SVC it also reaches for pods.
    """
    path = ServicePath(start)
    chains = rs.tables[table].chains if table in rs.tables else {}
    todo, seen = [start], set()
    for name in todo:  # breadth first: appended while iterating
        if name in seen:
            continue
        seen.add(name)
        path.chains.append(name)
        for r in chains[name].rules if name in chains else ():
            if r.target == "DNAT" and r.to_destination:
                path.targets[name] = r.to_destination
                path.lines.append(r.line)
            elif r.target and is_kube_chain(r.target) and not r.target.startswith("KUBE-MARK-"):
                if seps_only and not r.target.startswith("KUBE-SEP-"):
                    continue
                path.lines.append(r.line)
                todo.append(r.target)
    return path


@dataclass(frozen=True)
class NodePortScope:
    """Where KUBE-SERVICES sends NodePort traffic: every local address, or listed ones only."""

    all_local: bool
    addresses: tuple[str, ...]
    rules: tuple[IptRule, ...]


def nodeport_scope(rs: Ruleset) -> NodePortScope | None:
    """The `-j KUBE-NODEPORTS` rules ending nat KUBE-SERVICES (FM-20); None without that chain.

    Default: one `-m addrtype --dst-type LOCAL` rule. With nodePortAddresses set, one
    `-d <ip>/32` rule per node address inside the configured CIDRs instead.
    """
    if rs.chain("nat", "KUBE-SERVICES") is None:
        return None
    jumps = tuple(r for r in rs.rules("nat", "KUBE-SERVICES") if "KUBE-NODEPORTS" in r.line
                  and r.target == "KUBE-NODEPORTS")
    all_local = any(r.dst_type == "LOCAL" and not r.negated("--dst-type") and not r.destination for r in jumps)
    addrs = tuple(r.destination.split("/")[0] for r in jumps if r.destination and not r.negated("-d"))
    return NodePortScope(all_local, addrs, jumps)


def last_service_rule(rs: Ruleset) -> IptRule | None:
    rules = rs.rules("nat", "KUBE-SERVICES")
    return rules[-1] if rules else None


@dataclass(frozen=True)
class BlockedService:
    """A kube-proxy rule that refuses (REJECT) or drops traffic for lack of endpoints."""

    service: str
    reason: str  # "no endpoints" | "no local endpoints"
    verdict: str  # REJECT | DROP | KUBE-MARK-DROP (pre-1.24 KUBE-XLB)
    port: int | None
    protocol: str | None
    destination: str | None
    rule: IptRule


_NO_ENDPOINTS = re.compile(r"^(?P<svc>\S+?) has no (?P<local>local )?endpoints$")


def blocked_services(rs: Ruleset) -> list[BlockedService]:
    """Every "has no (local) endpoints" rule, in filter (≥1.24 style) or nat (KUBE-XLB, older)."""
    out = []
    for table in ("filter", "nat"):
        for r in (r for r in rs.all_rules() if r.table == table and "has no " in r.line):
            m = _NO_ENDPOINTS.match(r.comment or "")
            if m and r.target:
                out.append(BlockedService(
                    service=m.group("svc"), reason="no local endpoints" if m.group("local") else "no endpoints",
                    verdict=r.target, port=r.dport, protocol=r.protocol, destination=r.destination, rule=r))
    return out
