"""What a flannel VXLAN data plane should look like, derived from the inventory and node evidence.

flanneld writes what it is (VTEP MAC, VNI, public IP) into node annotations and, for every peer,
programs three kernel entries: an FDB entry `<VtepMAC> dst <public-ip>`, a permanent neighbour
`<podCIDR .0> lladdr <VtepMAC>` and a route `<podCIDR> via <podCIDR .0> dev flannel.<VNI> onlink`
(flannel pkg/backend/vxlan/vxlan_network.go). Every flannel rule compares those two worlds;
the derivations live here so checks/flannel*.py stay declarations and verdicts. Pure: no I/O.
Comparing one node's tables with each peer (the N² part) lives in flannel_peer_tables.py.
"""
from __future__ import annotations

import ipaddress
import json
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Iterable

from .cluster.view import FLANNEL, ClusterView
from .rule import EvidenceSet

DEFAULT_VNI = 1
DEFAULT_PORT = 8472  # flannel leaves Port at 0 and the Linux kernel then uses 8472, not IANA 4789
VXLAN_OVERHEAD = 50  # flannel: MTU = underlay MTU - 50 (IPv4 outer header + UDP + VXLAN + inner Ethernet)
VAGRANT_NAT_IP = "10.0.2.15"


@dataclass(frozen=True)
class NetConf:
    """flannel's net-conf.json (kube-flannel-cfg ConfigMap), when the inventory has it."""

    network: str | None
    backend: str | None
    vni: int | None
    port: int | None
    direct_routing: bool
    where: str


@dataclass(frozen=True)
class Peer:
    """What every other node must have programmed for `name`, from its annotations and spec."""

    name: str
    mac: str | None
    public_ip: str | None
    cidr: ipaddress.IPv4Network | None

    @cached_property
    def gateway(self) -> str | None:
        return str(self.cidr.network_address) if self.cidr else None


@dataclass(frozen=True)
class Detection:
    flannel: bool
    vxlan: bool
    reason: str


# -- inventory ----------------------------------------------------------------------------------
def net_conf(view: ClusterView | None) -> NetConf | None:
    """Any ConfigMap carrying `net-conf.json`: its name differs between manifests and Helm charts."""
    for cm in (view.configMaps if view else []):
        raw = (cm.get("data") or {}).get("net-conf.json")
        if not raw:
            continue
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            continue
        backend = doc.get("Backend") or {}
        meta = cm.get("metadata", {})
        kind = (backend.get("Type") or "").lower() if backend else "udp"  # flannel's default without Backend
        return NetConf(network=doc.get("Network"), backend=kind or None,
                       vni=_int(backend.get("VNI")), port=_int(backend.get("Port")) or None,
                       direct_routing=bool(backend.get("DirectRouting")),
                       where=f"ConfigMap {meta.get('namespace', '?')}/{meta.get('name', '?')}")
    return None


def ipv4_pod_cidr(view: ClusterView, node: str) -> ipaddress.IPv4Network | None:
    """The node's IPv4 podCIDR (flannel.1 is the IPv4 device; dual-stack nodes list both)."""
    spec = (view.node(node) or {}).get("spec", {})
    for c in [spec.get("podCIDR")] + list(spec.get("podCIDRs") or []):
        try:
            net = ipaddress.ip_network(c, strict=False) if c else None
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            return net
    return None


def peer(view: ClusterView, node: str) -> Peer:
    info = view.flannel(node)
    mac = (info.vtep_mac or "").lower() or None if info else None
    return Peer(name=node, mac=mac, public_ip=info.public_ip if info else None, cidr=ipv4_pod_cidr(view, node))


def annotation_vni(view: ClusterView | None, node: str) -> int | None:
    info = view.flannel(node) if view else None
    return info.vni if info else None


def expected_vni(view: ClusterView | None) -> int:
    """net-conf.json's VNI, else what most nodes announce, else flannel's default 1."""
    conf = net_conf(view)
    if conf and conf.vni:
        return conf.vni
    vnis = [v for n in (view.node_names() if view else []) if (v := annotation_vni(view, n))]
    return Counter(vnis).most_common(1)[0][0] if vnis else DEFAULT_VNI


def device_name(view: ClusterView | None, node: str) -> str:
    """flannel names its device after the VNI: flannel.1, or flannel.4096 for Windows-compatible clusters."""
    return f"flannel.{annotation_vni(view, node) or expected_vni(view)}"


def device_names(view: ClusterView | None, nodes: Iterable[str]) -> dict[str, str]:
    vni = expected_vni(view)
    return {n: f"flannel.{annotation_vni(view, n) or vni}" for n in nodes}


def detect(view: ClusterView | None, evidence: EvidenceSet) -> Detection:
    """Does this cluster run flannel, and with the VXLAN backend? The reason names the signal used."""
    names = view.node_names() if view else []
    types = {n: (view.annotations(n).get(FLANNEL + "backend-type") or "") for n in names}
    vx_nodes = [n for n, t in types.items() if t == "vxlan"]
    if vx_nodes:
        return Detection(True, True, f"backend-type=vxlan annotation on {', '.join(vx_nodes)}")
    linked = sorted({e.node or "?" for e in evidence.all("links") if e.ok
                     for l in (e.data or []) if _is_flannel_vxlan(l)})
    if linked:
        return Detection(True, True, f"flannel VXLAN device present on {', '.join(linked)}")
    other = sorted({t for t in types.values() if t})
    if other:  # what flanneld runs wins over a net-conf.json it has not (re)read
        return Detection(True, False, f"flannel backend is {'/'.join(other)}, not vxlan")
    conf = net_conf(view)
    if conf and conf.backend == "vxlan":
        return Detection(True, True, f"{conf.where} configures backend vxlan")
    if conf or any("flannel" in (d.get("metadata", {}).get("name") or "") for d in (view.daemonSets if view else [])):
        return Detection(True, False, f"flannel backend is {conf.backend if conf else 'unknown'}, not vxlan")
    return Detection(False, False, "cluster does not use flannel: no flannel.alpha.coreos.com node annotations, "
                                   "no net-conf.json ConfigMap, no flannel.N VXLAN device")


# -- node evidence ------------------------------------------------------------------------------
def _is_flannel_vxlan(link: dict) -> bool:
    return str(link.get("name", "")).startswith("flannel.") and link.get("kind") == "vxlan"


def find_link(links: Iterable[dict], name: str) -> dict | None:
    links = list(links)
    exact = next((l for l in links if l.get("name") == name), None)
    return exact or next((l for l in links if _is_flannel_vxlan(l)), None)


def link_by_name_or_index(links: Iterable[dict], ref: Any) -> dict | None:
    return next((l for l in links if ref is not None and (l.get("name") == ref or l.get("index") == ref)), None)


def link_with_address(links: Iterable[dict], ip: str | None) -> dict | None:
    """The interface carrying `ip`: the NIC flannel should use (--iface) when ip is the InternalIP."""
    if not ip:
        return None
    return next((l for l in links if any(a.split("/")[0] == ip for a in l.get("addresses") or [])), None)


def underlay(links: list[dict], dev: dict) -> dict | None:
    vx = dev.get("vxlan") or {}
    return link_by_name_or_index(links, vx.get("dev")) or link_with_address(links, vx.get("local"))


def on_dev(entry: dict, dev: str) -> bool:
    """`bridge fdb show dev flannel.1` prints no dev column: entries without one count as on it."""
    return entry.get("dev") in (None, dev)


@lru_cache(maxsize=65536)  # every node's route table names every podCIDR: parse each string once
def norm_net(dst: str | None) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(dst, strict=False) if dst and dst != "default" else None
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def mac(value: Any) -> str:
    return str(value or "").lower()


# -- rendering: what `bridge`/`ip` print, so a person recognises the line ----------------------
def fdb_line(e: dict) -> str:
    flags = " self" * bool(e.get("self")) + " permanent" * bool(e.get("permanent"))
    dev = f" dev {e['dev']}" if e.get("dev") else ""
    return f"{mac(e.get('mac'))}{dev} dst {e.get('dst')}{flags}"


def neigh_line(e: dict) -> str:
    return f"{e.get('dst')} dev {e.get('dev') or '?'} lladdr {mac(e.get('lladdr'))} {e.get('state') or ''}".rstrip()


def route_line(e: dict) -> str:
    via = f" via {e['gateway']}" if e.get("gateway") else ""
    return f"{e.get('dst')}{via} dev {e.get('dev') or '?'}" + " onlink" * bool(e.get("onlink"))


def vx_line(dev: dict) -> str:
    vx = dev.get("vxlan") or {}
    return (f"{dev['name']}: mtu {dev.get('mtu')} vxlan id {vx.get('id')} local {vx.get('local')} "
            f"dev {vx.get('dev')} dstport {vx.get('port')}")


def pod_routes(routes: list[dict], cidr: ipaddress.IPv4Network | None) -> list[str]:
    """Routes that carry pod traffic (cni0, flannel.N) or touch `cidr`: what the kernel does with podCIDRs."""
    def touches(r: dict) -> bool:
        net = norm_net(r.get("dst"))
        return bool(cidr and net and net.overlaps(cidr))
    return [route_line(r) for r in routes
            if r.get("dev") == "cni0" or str(r.get("dev", "")).startswith("flannel.") or touches(r)]


def majority(values: Iterable[Any]) -> Any:
    counts = Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else None


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def vtep_local(evidence: EvidenceSet, node: str) -> str | None:
    ev = evidence.get("links", node)
    links = list(ev.data or []) if ev is not None and ev.ok else []
    return next(((l.get("vxlan") or {}).get("local") for l in links if _is_flannel_vxlan(l)), None)


def fdb_senders(evidence: EvidenceSet, devs: dict[str, str]) -> dict[str, dict[str, str]]:
    """VTEP MAC -> {node: dst}: where each node's FDB sends that MAC, i.e. the address the cluster uses."""
    out: dict[str, dict[str, str]] = {}
    for node, dev in devs.items():
        ev = evidence.get("fdb", node)
        for e in (ev.data or []) if ev is not None and ev.ok else []:
            if on_dev(e, dev) and e.get("dst"):
                out.setdefault(mac(e.get("mac")), {}).setdefault(node, e["dst"])
    return out


def address_problems(node: str, local: str | None, dev: str | None, ip: str | None, iface: str | None,
                     raw: str | None, over: str | None, me: Peer, seen: dict[str, str]) -> tuple[list[str], set[str]]:
    """Where flannel.1's local, the InternalIP, the public-ip annotations and peers' FDBs disagree."""
    problems, fms = [], set()
    if ip and local and local != ip:
        problems.append(f"flannel.1 local {local} (dev {dev}) is not the InternalIP {ip}"
                        f"{f' (on {iface})' if iface else ''}: flannel and kubelet picked different NICs (FM-06)")
        fms.add("FM-06")
    if not raw:
        problems.append("no flannel.alpha.coreos.com/public-ip annotation: flanneld has not registered this node")
    elif over and raw != over:
        problems.append(f"public-ip-overwrite is {over} but public-ip is still {raw}: flanneld on {node} has not "
                        f"restarted since the overwrite was set, so peers still use {raw} (FM-07)")
        fms.add("FM-07")
    elif not over and local and raw != local:
        problems.append(f"public-ip annotation {raw} is not flannel.1's local address {local} and no "
                        f"public-ip-overwrite is set: flanneld writes it from its interface at start, so it is "
                        f"stale or hand-edited (FM-07)")
        fms.add("FM-07")
    dsts = set(seen.values())
    if me.public_ip and len(dsts) == 1 and me.public_ip not in dsts:
        problems.append(f"peers {', '.join(sorted(seen))} send VXLAN for {node} (VtepMAC {me.mac}) to "
                        f"{next(iter(dsts))}, but its public-ip is {me.public_ip} (FM-07)")
        fms.add("FM-07")
    return problems, fms


def cidr_conflicts(node: str, cidr: ipaddress.IPv4Network, cidrs: dict[str, ipaddress.IPv4Network | None],
                   ips: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address], conf: NetConf | None) -> tuple[list[str], set[str], str | None]:
    """(problems, failure modes, what it collides with) for one node's podCIDR."""
    problems, fms, other = [], set(), None
    if conf and conf.network and not cidr.subnet_of(ipaddress.ip_network(conf.network)):
        problems.append(f"podCIDR {cidr} is outside flannel's Network {conf.network} ({conf.where}): "
                        f"--pod-network-cidr and net-conf.json disagree (FM-10)")
        fms.add("FM-10")
    for name, oc in cidrs.items():
        if name != node and oc is not None and cidr.overlaps(oc):
            problems.append(f"podCIDR {cidr} overlaps {name}'s {oc} (FM-27)")
            fms.add("FM-27")
            other = other or f"{name}'s podCIDR {oc}"
    for name, ip in sorted(ips.items()):
        if ip in cidr:
            problems.append(f"podCIDR {cidr} contains {name}'s InternalIP {ip}: traffic to that node is routed "
                            f"into the overlay (FM-27)")
            fms.add("FM-27")
            other = other or f"{name}'s InternalIP {ip}"
    return problems, fms, other
