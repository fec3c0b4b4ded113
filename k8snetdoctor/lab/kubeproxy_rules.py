"""kube-proxy 1.26 (iptables mode) rules, generated from a ClusterView for one node.

The lab has no kube-proxy, so it writes what kube-proxy would: the same chains, hashes,
comments and rule shapes as the real captures in tests/fixtures/kube-proxy-1.26 (a unit
test regenerates those dumps from their objects). Generation is a pure function of the view
and the node name, so a fault can load rules made from a stale or edited view on one node.
Not generated (the lab does not need them): LoadBalancer ingress IPs, externalIPs,
internalTrafficPolicy: Local, terminating-endpoint fallback, healthCheckNodePort, IPv6.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from k8snetdoctor.cluster.view import ClusterView, ServicePort
from k8snetdoctor.lab.rules import Ruleset, comment

MASQ_MARK = "0x4000/0x4000"
REJECT = "REJECT --reject-with icmp-port-unreachable"
NODEPORTS_LAST = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(name + protocol)), first 16 characters."""
    digest = hashlib.sha256((service_port_name + protocol.lower()).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def svc_chain(spn: str, protocol: str) -> str:
    return "KUBE-SVC-" + port_proto_hash(spn, protocol)


def ext_chain(spn: str, protocol: str) -> str:
    return "KUBE-EXT-" + port_proto_hash(spn, protocol)


def svl_chain(spn: str, protocol: str) -> str:
    return "KUBE-SVL-" + port_proto_hash(spn, protocol)


def sep_chain(spn: str, protocol: str, endpoint: str) -> str:
    """KUBE-SEP-: the same hash over name + protocol + "ip:port"."""
    digest = hashlib.sha256((spn + protocol.lower() + endpoint).encode()).digest()
    return "KUBE-SEP-" + base64.b32encode(digest).decode()[:16]


def probability(n: int) -> str:
    """1/n as kube-proxy writes it (%0.10f), then as iptables-save prints it back.

    xt_statistic stores the probability as a 31-bit fraction and prints it with 11 decimals,
    so a dump of real rules shows 0.33333333349, not kube-proxy's 0.3333333333.
    """
    written = float(f"{1.0 / n:0.10f}")
    stored = int(written * 0x80000000 + 0.5)
    return f"{stored / 0x80000000:.11f}"


@dataclass(frozen=True)
class _Endpoint:
    ip: str
    port: int
    node: str | None

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def base_ruleset() -> Ruleset:
    """The chains and jumps kube-proxy installs whatever the Services are."""
    rs = Ruleset()
    rs.declare("mangle", "KUBE-PROXY-CANARY")
    rs.declare("filter", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-CANARY",
               "KUBE-PROXY-FIREWALL", "KUBE-SERVICES")
    new = "-m conntrack --ctstate NEW"
    fw = f"{new} {comment('kubernetes load balancer firewall')} -j KUBE-PROXY-FIREWALL"
    portals = f"{new} {comment('kubernetes service portals')} -j KUBE-SERVICES"
    ext = f"{new} {comment('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES"
    for spec in (fw, f"{comment('kubernetes health check service ports')} -j KUBE-NODEPORTS", ext):
        rs.add("filter", "INPUT", spec)
    for spec in (fw, f"{comment('kubernetes forwarding rules')} -j KUBE-FORWARD", portals, ext):
        rs.add("filter", "FORWARD", spec)
    for spec in (fw, portals):
        rs.add("filter", "OUTPUT", spec)
    rs.add("filter", "KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP")
    rs.add("filter", "KUBE-FORWARD", f"{comment('kubernetes forwarding rules')} -m mark --mark {MASQ_MARK} -j ACCEPT")
    rs.add("filter", "KUBE-FORWARD", f"{comment('kubernetes forwarding conntrack rule')} "
                                     "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    rs.declare("nat", "KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-PROXY-CANARY", "KUBE-SERVICES")
    rs.add("nat", "PREROUTING", f"{comment('kubernetes service portals')} -j KUBE-SERVICES")
    rs.add("nat", "OUTPUT", f"{comment('kubernetes service portals')} -j KUBE-SERVICES")
    rs.add("nat", "POSTROUTING", f"{comment('kubernetes postrouting rules')} -j KUBE-POSTROUTING")
    rs.add("nat", "KUBE-MARK-MASQ", f"-j MARK --set-xmark {MASQ_MARK}")
    rs.add("nat", "KUBE-POSTROUTING", f"-m mark ! --mark {MASQ_MARK} -j RETURN")
    rs.add("nat", "KUBE-POSTROUTING", "-j MARK --set-xmark 0x4000/0x0")
    rs.add("nat", "KUBE-POSTROUTING", f"{comment('kubernetes service traffic requiring SNAT')} "
                                      "-j MASQUERADE --random-fully")
    return rs


def ruleset(view: ClusterView, node: str) -> Ruleset:
    """Everything kube-proxy on `node` would have in mangle, filter and nat."""
    cfg = view.kube_proxy_config() or {}
    cluster_cidr = str(cfg.get("clusterCIDR") or "").split(",")[0] or None
    rs = base_ruleset()
    for sp, svc in _service_ports(view):
        _service_rules(rs, sp, svc, _endpoints(view, sp), node, cluster_cidr)
    for dst in _nodeport_destinations(view, node, cfg.get("nodePortAddresses") or []):
        rs.add("nat", "KUBE-SERVICES", f"{dst}{comment(NODEPORTS_LAST)} "
                                       f"{'' if dst else '-m addrtype --dst-type LOCAL '}-j KUBE-NODEPORTS", 100)
    return rs


def render(view: ClusterView, node: str) -> str:
    """iptables-restore input, laid out like `iptables-save` on a kube-proxy 1.26 node."""
    return ruleset(view, node).render(header=f"netdoctor lab: kube-proxy 1.26 rules for {node}")


def owns(chain: str) -> bool:
    """The chains that are kube-proxy's (for Ruleset.replace_owned)."""
    return chain.startswith("KUBE-")


# -- per service port ------------------------------------------------------------------------
def _service_ports(view: ClusterView) -> list[tuple[ServicePort, dict[str, Any]]]:
    by_key = {(s["metadata"].get("namespace", "default"), s["metadata"]["name"]): s for s in view.services}
    out = []
    for sp in view.service_ports():
        svc = by_key[(sp.namespace, sp.name)]
        if sp.type == "ExternalName" or not sp.cluster_ip or sp.cluster_ip == "None":
            continue
        out.append((sp, svc))
    return sorted(out, key=lambda x: (x[0].ref, x[0].protocol))


def _endpoints(view: ClusterView, sp: ServicePort) -> list[_Endpoint]:
    """Ready endpoints with the slice's target port, sorted by "ip:port" as kube-proxy does."""
    eps: dict[str, _Endpoint] = {}
    for es in view.endpointSlices:
        meta = es.get("metadata", {})
        if meta.get("namespace", "default") != sp.namespace:
            continue
        if (meta.get("labels") or {}).get("kubernetes.io/service-name") != sp.name:
            continue
        port = next((p for p in es.get("ports") or [] if (p.get("name") or "") == sp.port_name
                     and (p.get("protocol") or "TCP") == sp.protocol), None)
        if not port or port.get("port") is None:
            continue
        for ep in es.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for addr in ep.get("addresses") or []:
                e = _Endpoint(addr, int(port["port"]), ep.get("nodeName"))
                eps[str(e)] = e
    return [eps[k] for k in sorted(eps)]


def _service_rules(rs: Ruleset, sp: ServicePort, svc: dict[str, Any], eps: list[_Endpoint],
                   node: str, cluster_cidr: str | None) -> None:
    spn, proto = sp.ref, sp.protocol.lower()
    svc_c, ext_c, svl_c = svc_chain(spn, proto), ext_chain(spn, proto), svl_chain(spn, proto)
    local = [e for e in eps if e.node == node]
    etp_local = sp.external_traffic_policy == "Local" and sp.node_port is not None
    has_eps = bool(eps)
    has_ext_eps = bool(local) if etp_local else has_eps
    dport = f"-m {proto} --dport"
    cip = f"-d {sp.cluster_ip}/32 -p {proto}"

    if has_eps:
        rs.add("nat", "KUBE-SERVICES", f"{cip} {comment(spn + ' cluster IP')} {dport} {sp.port} -j {svc_c}")
    else:
        rs.add("filter", "KUBE-SERVICES",
               f"{cip} {comment(spn + ' has no endpoints')} {dport} {sp.port} -j {REJECT}")

    if sp.node_port:
        if has_eps:
            rs.add("nat", "KUBE-NODEPORTS", f"-p {proto} {comment(spn)} {dport} {sp.node_port} -j {ext_c}")
        if not has_ext_eps:
            why, target = ("has no local endpoints", "DROP") if has_eps else ("has no endpoints", REJECT)
            rs.add("filter", "KUBE-EXTERNAL-SERVICES", f"-p {proto} {comment(f'{spn} {why}')} "
                   f"-m addrtype --dst-type LOCAL {dport} {sp.node_port} -j {target}")
        if has_eps:
            _external_chain(rs, spn, ext_c, svc_c, svl_c, etp_local, has_ext_eps, cluster_cidr)

    if not has_eps:
        return
    rs.declare("nat", svc_c)
    if cluster_cidr:
        rs.add("nat", svc_c, f"! -s {cluster_cidr} {cip} {comment(spn + ' cluster IP')} {dport} {sp.port} "
                             "-j KUBE-MARK-MASQ")
    affinity = _affinity_seconds(svc)
    _to_endpoints(rs, svc_c, spn, proto, eps, affinity)
    if etp_local and local:
        rs.declare("nat", svl_c)
        _to_endpoints(rs, svl_c, spn, proto, local, affinity)
    for e in eps:
        sep = sep_chain(spn, proto, str(e))
        rs.add("nat", sep, f"-s {e.ip}/32 {comment(spn)} -j KUBE-MARK-MASQ")
        recent = f" -m recent --set --name {sep} --mask 255.255.255.255 --rsource" if affinity else ""
        rs.add("nat", sep, f"-p {proto} {comment(spn)}{recent} -m {proto} -j DNAT --to-destination {e}")


def _external_chain(rs: Ruleset, spn: str, ext_c: str, svc_c: str, svl_c: str, etp_local: bool,
                    has_ext_eps: bool, cluster_cidr: str | None) -> None:
    rs.declare("nat", ext_c)
    if not etp_local:
        rs.add("nat", ext_c, f"{comment(f'masquerade traffic for {spn} external destinations')} -j KUBE-MARK-MASQ")
        rs.add("nat", ext_c, f"-j {svc_c}")
        return
    if cluster_cidr:
        rs.add("nat", ext_c, f"-s {cluster_cidr} {comment(f'pod traffic for {spn} external destinations')} "
                             f"-j {svc_c}")
    rs.add("nat", ext_c, f"{comment(f'masquerade LOCAL traffic for {spn} external destinations')} "
                         "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
    rs.add("nat", ext_c, f"{comment(f'route LOCAL traffic for {spn} external destinations')} "
                         f"-m addrtype --src-type LOCAL -j {svc_c}")
    if has_ext_eps:
        rs.add("nat", ext_c, f"-j {svl_c}")


def _to_endpoints(rs: Ruleset, chain: str, spn: str, proto: str, eps: list[_Endpoint],
                  affinity: int | None) -> None:
    if affinity:
        for e in eps:
            sep = sep_chain(spn, proto, str(e))
            rs.add("nat", chain, f"{comment(f'{spn} -> {e}')} -m recent --rcheck --seconds {affinity} --reap "
                                 f"--name {sep} --mask 255.255.255.255 --rsource -j {sep}")
    for i, e in enumerate(eps):
        sep = sep_chain(spn, proto, str(e))
        stat = f" -m statistic --mode random --probability {probability(len(eps) - i)}" if i < len(eps) - 1 else ""
        rs.add("nat", chain, f"{comment(f'{spn} -> {e}')}{stat} -j {sep}")


def _affinity_seconds(svc: dict[str, Any]) -> int | None:
    spec = svc.get("spec", {})
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
    return int(cfg.get("timeoutSeconds") or 10800)


def _nodeport_destinations(view: ClusterView, node: str, cidrs: list[str]) -> list[str]:
    """"" (addrtype LOCAL) unless nodePortAddresses narrows NodePorts to some node addresses."""
    if not cidrs or any(ipaddress.ip_network(c).prefixlen == 0 for c in cidrs):
        return [""]
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    candidates = [a for a in (view.internal_ip(node), "127.0.0.1") if a]
    return [f"-d {a}/32 " for a in candidates if any(ipaddress.ip_address(a) in n for n in nets)]
