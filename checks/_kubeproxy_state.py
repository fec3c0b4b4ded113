"""What kube-proxy left on a node: its iptables dumps, its mode, and what they say about a NodePort.

Shared by checks/kubeproxy.py and checks/nodeport.py so both read a node's state the same way
(which backend holds kube-proxy's rules, what a NodePort's chain leads to). No rules here:
the registry skips modules whose name starts with "_".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from k8snetdoctor import iptables as ipt
from k8snetdoctor import kube_iptables as kipt
from k8snetdoctor.cluster.view import ClusterView, Endpoint, ServicePort
from k8snetdoctor.model import Evidence, EvidenceRef
from k8snetdoctor.rule import EvidenceSet


@dataclass(frozen=True)
class Dump:
    """One backend's iptables-save on one node, parsed."""

    node: str
    backend: str
    evidence: Evidence
    rules: ipt.Ruleset
    kube_rules: int
    mode: kipt.ProxyMode | None


def dumps(evidence: EvidenceSet, node: str) -> list[Dump]:
    out = []
    for ev in evidence.all("iptables-save", node, "node"):
        data = ev.data if ev.ok and isinstance(ev.data, dict) else None
        if not data or not isinstance(data.get("text"), str):
            continue
        rs = ipt.parse(data["text"])
        count = data.get("kubeRules")
        out.append(Dump(node, str(data.get("backend") or "?"), ev, rs,
                        int(count) if isinstance(count, int) else kipt.kube_rule_count(rs), kipt.proxy_mode(rs)))
    return out


def active_dump(evidence: EvidenceSet, node: str) -> Dump | None:
    """The dump kube-proxy's iptables-mode rules live in (the fuller one if they are split)."""
    found = [d for d in dumps(evidence, node) if d.mode == "iptables"]
    return max(found, key=lambda d: d.kube_rules) if found else None


def nft_has_kube_proxy(evidence: EvidenceSet, node: str) -> bool | None:
    """True when `nft -j list ruleset` shows kube-proxy's table; None when not collected."""
    ev = evidence.get("nft-ruleset", node)
    if ev is None or not ev.ok:
        return None
    items = (ev.data or {}).get("nftables", []) if isinstance(ev.data, dict) else []
    return any(isinstance(i, dict) and (i.get("table") or {}).get("name") == "kube-proxy" for i in items)


def configured_mode(view: ClusterView | None) -> str | None:
    """The ConfigMap's `mode`; "" means iptables on Linux. None when there is no ConfigMap."""
    cfg = view.kube_proxy_config() if view else None
    if cfg is None:
        return None
    mode = str(cfg.get("mode") or "").strip().lower()
    return mode or "iptables"


def ref(dump: Dump, lines: list[str] | str) -> EvidenceRef:
    text = lines if isinstance(lines, str) else "\n".join(lines)
    return EvidenceRef.to(dump.evidence, text)


# -- one NodePort on one node ---------------------------------------------------------------------
@dataclass
class PortObs:
    """What one node's rules say about one NodePort: ok | missing | stale | no-endpoints."""

    sp: ServicePort
    state: str
    detail: str = ""
    lines: list[str] = field(default_factory=list)
    has_rule: bool = False


def port_label(sp: ServicePort) -> str:
    return f"NodePort {sp.node_port}/{sp.protocol}"


Key = tuple[str, int]  # (protocol, nodePort)


def observe(d: Dump, sp: ServicePort, eps: list[Endpoint], entries: dict[Key, kipt.NodePortEntry],
            rejects: dict[Key, kipt.BlockedService]) -> PortObs:
    """Compare one NodePort's chain on one node with the Service's ready endpoints.

    Addresses are compared, not ports: ClusterView's Endpoint carries no port. For
    externalTrafficPolicy=Local the node-local KUBE-SVL chain is compared with the endpoints
    on this node too, since that is the chain external traffic takes.
    """
    key = (sp.protocol.lower(), sp.node_port or 0)
    entry, reject = entries.get(key), rejects.get(key)
    ready = {e.address for e in eps if e.ready}
    label = f"{sp.ref} ({port_label(sp)})"
    if entry is None:
        if not ready:
            return PortObs(sp, "no-endpoints", lines=[reject.rule.line] if reject else [], has_rule=bool(reject))
        if reject:
            return PortObs(sp, "stale", f"{label}: rules still REJECT it as having no endpoints, but it has "
                           f"{len(ready)} ready", [reject.rule.line], has_rule=True)
        return PortObs(sp, "missing")
    lines = [entry.rule.line]
    if entry.service and entry.service.rstrip(":") != sp.ref.rstrip(":"):
        return PortObs(sp, "stale", f"--dport {sp.node_port} still routes to {entry.service}, not {sp.ref}",
                       lines, has_rule=True)
    path = kipt.follow(d.rules, entry.target)
    lines += path.lines
    if path.ips != ready:
        return PortObs(sp, "stale", f"{label}: rules DNAT to {_join(path.endpoints, 'nothing')} but the ready "
                       f"endpoints are {_join(ready, 'none')}", lines, has_rule=True)
    if sp.external_traffic_policy == "Local" and entry.target.startswith("KUBE-EXT-"):
        svl = "KUBE-SVL-" + entry.target[len("KUBE-EXT-"):]
        local = {e.address for e in eps if e.ready and e.node == d.node}
        got = kipt.follow(d.rules, svl, seps_only=True).ips if d.rules.chain("nat", svl) else set()
        if got != local:
            return PortObs(sp, "stale", f"{label}: node-local rules ({svl}) DNAT to {_join(got, 'nothing')} but "
                           f"the local ready endpoints are {_join(local, 'none')}", lines, has_rule=True)
    return PortObs(sp, "ok", lines=lines, has_rule=True)


def _join(items: set[str], empty: str) -> str:
    return ", ".join(sorted(items)) or empty


def orphans(d: Dump, ports: list[ServicePort]) -> list[str]:
    """KUBE-NODEPORTS rules for ports no Service has any more: left by a kube-proxy that stopped."""
    known = {(sp.protocol.lower(), sp.node_port) for sp in ports}
    return [e.rule.line for e in kipt.nodeport_entries(d.rules) if (e.protocol, e.port) not in known]
