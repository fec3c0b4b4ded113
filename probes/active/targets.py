"""What active tests aim at, read from the ClusterView: echo pods, cluster DNS, control planes, peers.

Pure. The planner asks these questions per node and per vantage; answering them in one place
keeps the plan itself a readable list of "from here, to there, by this method".
"""
from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from k8snetdoctor.cluster.view import ClusterView, ServicePort

from .model import Vantage

CP_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


@dataclass(frozen=True)
class PlanConfig:
    """Knobs of the planner. Defaults are flannel-VXLAN on a 1500-byte underlay, as the lab builds."""

    full_mesh_max: int = 10        # up to this many nodes every pair is tested
    sample_k: int = 5              # above it, this many sampled peers per node ...
    seed: int = 0                  # ... chosen reproducibly from this seed ...
    max_anchors: int = 8           # ... plus CoreDNS/echo nodes (echo nodes capped at this many)
    echo_selectors: tuple[Mapping[str, str], ...] = ({"app": "echo"}, {"app": "echo-hostport"})
    echo_port: int = 8080
    health_path: str = "/healthz"
    kubelet_port: int = 10250
    vxlan_port: int = 8472
    underlay_mtu: int = 1500
    pod_mtu: int | None = None     # None: underlay_mtu - 50 (VXLAN overhead), flannel's choice
    cluster_domain: str = "cluster.local"
    external_name: str = "example.com"
    dns_service: tuple[str, str] = ("kube-system", "kube-dns")
    same_node: bool = True         # also test targets on the vantage's own node (a baseline)

    @property
    def overlay_mtu(self) -> int:
        return self.pod_mtu if self.pod_mtu is not None else self.underlay_mtu - 50


@dataclass(frozen=True)
class PodTarget:
    name: str                      # namespace/name
    node: str
    ip: str
    http: bool                     # serves the echo health path on echo_port
    host_ports: tuple[int, ...] = ()


@dataclass
class ClusterDns:
    service: str = ""                              # namespace/name of the cluster DNS Service
    cluster_ips: list[str] = field(default_factory=list)
    endpoints: list[tuple[str, str | None]] = field(default_factory=list)   # (pod IP, node)
    forward: list[str] | None = None               # Corefile `forward .` targets; None: unknown

    @property
    def nodes(self) -> set[str]:
        return {n for _, n in self.endpoints if n}


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _running_ip(pod: Mapping[str, Any]) -> str | None:
    st = pod.get("status") or {}
    if st.get("phase", "Running") != "Running" or (pod.get("spec") or {}).get("hostNetwork"):
        return None
    return st.get("podIP")


def echo_pods(view: ClusterView, cfg: PlanConfig) -> dict[str, list[PodTarget]]:
    """node -> echo pods on it, the first selector's pods first (they are the mesh targets)."""
    out: dict[str, list[tuple[int, PodTarget]]] = {}
    for pod in view.pods:
        ip, labels = _running_ip(pod), _labels(pod)
        rank = next((i for i, sel in enumerate(cfg.echo_selectors) if _matches(labels, sel)), None)
        node = (pod.get("spec") or {}).get("nodeName")
        if ip is None or rank is None or not node:
            continue
        hps = tuple(int(p["hostPort"]) for c in pod["spec"].get("containers") or []
                    for p in c.get("ports") or [] if p.get("hostPort"))
        meta = pod["metadata"]
        out.setdefault(node, []).append(
            (rank, PodTarget(f"{meta.get('namespace', 'default')}/{meta['name']}", node, ip, True, hps)))
    return {n: [t for _, t in sorted(v, key=lambda x: (x[0], x[1].name))] for n, v in out.items()}


def cluster_dns(view: ClusterView, cfg: PlanConfig) -> ClusterDns:
    ns, name = cfg.dns_service
    ports = [sp for sp in view.service_ports() if (sp.namespace, sp.name) == (ns, name)]
    dns = ClusterDns(service=f"{ns}/{name}", forward=corefile_forward(view))
    udp = next((sp for sp in ports if sp.protocol == "UDP"), ports[0] if ports else None)
    if udp is None:
        return dns
    if udp.cluster_ip and udp.cluster_ip != "None":
        dns.cluster_ips = [udp.cluster_ip]
    seen = set()
    for ep in view.endpoints(udp):
        if ep.ready and ep.address not in seen:
            seen.add(ep.address)
            dns.endpoints.append((ep.address, ep.node))
    dns.endpoints.sort()
    return dns


_FORWARD = re.compile(r"^\s*forward\s+\.\s+([^{#]+)")


def corefile_forward(view: ClusterView) -> list[str] | None:
    """The `forward .` targets of the CoreDNS Corefile ("/etc/resolv.conf" or addresses)."""
    cm = view.config_map("kube-system", "coredns")
    text = ((cm or {}).get("data") or {}).get("Corefile")
    if not text:
        return None
    for line in text.splitlines():
        m = _FORWARD.match(line)
        if m:
            return [w.removeprefix("dns://").split(":")[0] if not w.startswith("/") else w
                    for w in m.group(1).split()]
    return None


def control_planes(view: ClusterView) -> list[str]:
    out = []
    for n in view.node_names():
        node = view.node(n) or {}
        taints = (node.get("spec") or {}).get("taints") or []
        if any(k in _labels(node) for k in CP_LABELS) or any(t.get("key") in CP_LABELS for t in taints):
            out.append(n)
    return out


def kubelet_port(view: ClusterView, node: str, default: int) -> int:
    st = (view.node(node) or {}).get("status") or {}
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return int(port) if port else default


def vtep_ip(view: ClusterView, node: str) -> str | None:
    """flannel.1's address: the network address of the node's podCIDR, as flanneld assigns it."""
    cidr = view.pod_cidr(node)
    return str(ipaddress.ip_network(cidr, strict=False).network_address) if cidr else None


def echo_service_ports(view: ClusterView, echo_ips: set[str]) -> list[tuple[ServicePort, list]]:
    """TCP service ports whose ready endpoints are all echo pods, with those endpoints."""
    out = []
    for sp in view.service_ports():
        if sp.protocol != "TCP":
            continue
        eps = [e for e in view.endpoints(sp) if e.ready]
        if eps and all(e.address in echo_ips for e in eps):
            out.append((sp, eps))
    return sorted(out, key=lambda x: x[0].ref)


def anchors(view: ClusterView, cfg: PlanConfig, echo: Mapping[str, list[PodTarget]], dns: ClusterDns,
            local_eps: Iterable[str]) -> tuple[list[str], list[str]]:
    """(anchor nodes, echo nodes left out by the cap).

    Always anchored: CoreDNS nodes, hostPort echo nodes, nodes with the only endpoints of an
    externalTrafficPolicy: Local echo Service — each is a single place clients must reach.
    Other echo nodes are anchored up to max_anchors: an echo DaemonSet would otherwise turn
    "sampled" back into "all pairs".
    """
    must = set(dns.nodes) | {n for n, pods in echo.items() if any(p.host_ports for p in pods)} | set(local_eps)
    rest = sorted(n for n in echo if n not in must)
    room = max(0, cfg.max_anchors - len(must))
    if len(rest) > room:
        kept = sorted(random.Random(f"{cfg.seed}:anchors").sample(rest, room))
        dropped = sorted(set(rest) - set(kept))
    else:
        kept, dropped = rest, []
    return sorted(must | set(kept)), dropped


def peers(nodes: list[str], cfg: PlanConfig, anchor_nodes: Iterable[str]) -> dict[str, list[str]]:
    """node -> the other nodes it tests: all of them up to full_mesh_max, else k sampled + anchors.

    Each node draws its own sample (seeded by seed and its name), so every node is a source
    and, in expectation, a destination k times, and a rerun tests the same pairs.
    """
    if len(nodes) <= cfg.full_mesh_max:
        return {n: [p for p in nodes if p != n] for n in nodes}
    anchored = set(anchor_nodes)
    out = {}
    for n in nodes:
        others = [p for p in nodes if p != n]
        pool = [p for p in others if p not in anchored]
        sample = random.Random(f"{cfg.seed}:{n}").sample(pool, min(cfg.sample_k, len(pool)))
        out[n] = sorted(set(sample) | (anchored - {n}), key=nodes.index)
    return out


def vantages_for(view: ClusterView, pod_selector: Mapping[str, str] | None = None, *,
                 external: bool = True, external_ip: str | None = None) -> list[Vantage]:
    """A node vantage per node, a pod vantage per node where a pod matching `pod_selector` runs
    (the pod-vantage DaemonSet; the lab's toolbox pods), and the runner outside the cluster."""
    out: list[Vantage] = []
    for n in view.node_names():
        out.append(Vantage.for_node(n, view.internal_ip(n)))
        pods = sorted((p for p in view.pods_on(n) if pod_selector and _matches(_labels(p), pod_selector)
                       and _running_ip(p)), key=lambda p: p["metadata"]["name"])
        if pods:
            meta = pods[0]["metadata"]
            out.append(Vantage.for_pod(n, f"{meta.get('namespace', 'default')}/{meta['name']}", _running_ip(pods[0])))
    if external:
        out.append(Vantage.external(external_ip))
    return out
