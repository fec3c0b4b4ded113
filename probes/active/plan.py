"""Which packets to send from where: the active-test plan, built from a ClusterView alone.

Pure, so the plan is the same on every run for the same inventory (the sampling is seeded),
can be unit-tested without root, and a person can read it before anything is sent. Fan-out is
bounded: every node pair up to `full_mesh_max` nodes; above that each node tests k sampled
peers plus the anchor nodes (CoreDNS, hostPort and ETP-Local echo endpoints, a capped number
of other echo nodes), because a full mesh of 200 nodes is 40 000 pairs per test kind.
"""
from __future__ import annotations

from typing import Iterable

from k8snetdoctor.cluster.view import ClusterView

from . import plan_dns
from .model import CONN, MTU, OK, REACHABLE, TOO_BIG, UNREACHABLE, VXLAN_ECHO, Plan, Test, Vantage
from .targets import (PlanConfig, PodTarget, anchors, cluster_dns, control_planes, echo_pods, echo_service_ports,
                      kubelet_port, peers, vtep_ip)

__all__ = ["PlanConfig", "build_plan"]


def build_plan(view: ClusterView, vantages: Iterable[Vantage], config: PlanConfig | None = None) -> Plan:
    """Every test the vantages that exist can run against this inventory, in a stable order."""
    cfg = config or PlanConfig()
    vs = list(vantages)
    node_v = {v.node: v for v in vs if v.kind == "node" and v.node}
    pod_v = {v.node: v for v in vs if v.kind == "pod" and v.node}
    ext = next((v for v in vs if v.kind == "external"), None)
    nodes = view.node_names()
    echo = echo_pods(view, cfg)
    dns = cluster_dns(view, cfg)
    svc_ports = echo_service_ports(view, {p.ip for pods in echo.values() for p in pods})
    local_nodes = {e.node for sp, eps in svc_ports if sp.external_traffic_policy == "Local" for e in eps if e.node}
    api = [sp for sp in view.service_ports() if (sp.namespace, sp.name) == ("default", "kubernetes")
           and sp.protocol == "TCP" and sp.cluster_ip and sp.cluster_ip != "None"]
    anchor_nodes, capped = anchors(view, cfg, echo, dns, local_nodes)
    peer_map = peers(nodes, cfg, anchor_nodes)
    plan = Plan(tests=[], sampling={
        "nodes": len(nodes), "fullMesh": len(nodes) <= cfg.full_mesh_max, "k": cfg.sample_k, "seed": cfg.seed,
        "anchors": [] if len(nodes) <= cfg.full_mesh_max else anchor_nodes,
        "peers": {n: len(p) for n, p in peer_map.items()}})
    if capped and len(nodes) > cfg.full_mesh_max:
        plan.notes.append(f"echo pods on {len(echo)} nodes: {len(capped)} of them are not anchors "
                          f"(max_anchors={cfg.max_anchors}); they are still tested when sampled")

    def mesh_target(node: str) -> PodTarget | None:
        if echo.get(node):
            return echo[node][0]
        pv = pod_v.get(node)
        return PodTarget(pv.name, node, pv.ip, http=False) if pv and pv.ip else None

    def reach(node: str) -> list[str]:
        return ([node] if cfg.same_node else []) + peer_map.get(node, [])

    add = plan.tests.append
    for n in nodes:
        pv, nv = pod_v.get(n), node_v.get(n)
        for peer in reach(n):
            t = mesh_target(peer)
            if t is None:
                continue
            for v, cat in ((pv, "pod-pod"), (nv, "node-pod")):
                if v is None or v.name == t.name:
                    continue
                if t.http:
                    add(_http(cat, v, t.ip, cfg.echo_port, cfg.health_path, t.name, peer))
                add(_icmp(cat, v, t.ip, t.name, peer))
            if pv and (ip := view.internal_ip(peer)):   # pod -> kubelet: metrics-server's path (FM-34)
                port = kubelet_port(view, peer, cfg.kubelet_port)
                add(Test(f"pod-node:{pv.id}->{peer}@{ip}:{port}:tcp", CONN, "tcp", "pod-node", pv, ip, port, "tcp",
                         peer, peer))
                add(_icmp("pod-node", pv, ip, peer, peer))
        _overlay_tests(plan, view, cfg, n, nv, pv, peer_map.get(n, []), mesh_target)
        if pv:
            _clusterip_tests(plan, cfg, pv, svc_ports, api)
    _nodeport_tests(plan, view, cfg, nodes, node_v, ext, svc_ports, reach)
    _hostport_tests(plan, view, cfg, echo, node_v)
    _kubelet_tests(plan, view, cfg, nodes, node_v, ext)
    plan.tests += plan_dns.dns_tests(view, cfg, dns, nodes, node_v, pod_v)
    if not dns.cluster_ips and not dns.endpoints:
        plan.notes.append(f"no cluster DNS Service {dns.service} with endpoints: only resolv.conf queries planned")
    return plan


def _http(cat: str, v: Vantage, host: str, port: int, path: str, target: str, node: str | None,
          expect: str = REACHABLE) -> Test:
    return Test(f"{cat}:{v.id}->{target}@{host}:{port}:http", CONN, "http", cat, v, host, port, "tcp", target, node,
                expect, {"path": path})


def _icmp(cat: str, v: Vantage, host: str, target: str, node: str | None) -> Test:
    return Test(f"{cat}:{v.id}->{target}@{host}:icmp", CONN, "icmp", cat, v, host, None, "icmp", target, node)


def _overlay_tests(plan: Plan, view: ClusterView, cfg: PlanConfig, n: str, nv: Vantage | None,
                   pv: Vantage | None, peer_nodes: list[str], mesh_target) -> None:
    """VXLAN echo to each peer VTEP and DF pings at/above the MTU (underlay from the node, overlay from the pod)."""
    me = view.flannel(n)
    for peer in peer_nodes:
        fl, ip = view.flannel(peer), view.internal_ip(peer)
        if nv and me and fl and me.backend == "vxlan" and fl.backend == "vxlan" and me.vtep_mac and fl.vtep_mac:
            dst = fl.public_ip or ip
            src_vtep, dst_vtep = vtep_ip(view, n), vtep_ip(view, peer)
            if dst and src_vtep and dst_vtep:
                plan.tests.append(Test(
                    f"vxlan:{nv.id}->{peer}@{dst}:{cfg.vxlan_port}", VXLAN_ECHO, "vxlan", "vxlan", nv, dst,
                    cfg.vxlan_port, "udp", peer, peer, REACHABLE,
                    {"vni": fl.vni if fl.vni is not None else 1, "srcVtepMac": me.vtep_mac, "dstVtepMac": fl.vtep_mac,
                     "srcVtepIp": src_vtep, "dstVtepIp": dst_vtep}))
        for v, host, target, mtu, cat in ((nv, ip, peer, cfg.underlay_mtu, "mtu-underlay"),
                                          (pv, None, None, cfg.overlay_mtu, "mtu-pod")):
            if v is None:
                continue
            if cat == "mtu-pod":
                t = mesh_target(peer)
                if t is None or t.name == v.name:
                    continue
                host, target = t.ip, t.name
            if not host:
                continue
            for size, expect in ((mtu, OK), (mtu + 1, TOO_BIG)):
                plan.tests.append(Test(f"{cat}:{v.id}->{target}@{host}:{size}", MTU, "df-ping", cat, v, host, None,
                                       "icmp", target, peer, expect, {"size": size, "mtu": mtu}))


def _clusterip_tests(plan: Plan, cfg: PlanConfig, pv: Vantage, svc_ports, api) -> None:
    """Echo ClusterIPs by HTTP, and the apiserver's ClusterIP by TCP connect (what every client pod needs)."""
    for sp, _eps in svc_ports:
        if sp.cluster_ip and sp.cluster_ip != "None":
            plan.tests.append(_http("pod-clusterip", pv, sp.cluster_ip, sp.port, cfg.health_path, sp.ref, None))
    for sp in api:
        plan.tests.append(Test(f"pod-clusterip:{pv.id}->{sp.ref}@{sp.cluster_ip}:{sp.port}:tcp", CONN, "tcp",
                               "pod-clusterip", pv, sp.cluster_ip, sp.port, "tcp", sp.ref, None))


def _nodeport_tests(plan: Plan, view: ClusterView, cfg: PlanConfig, nodes: list[str], node_v: dict,
                    ext: Vantage | None, svc_ports, reach) -> None:
    """Each echo NodePort on every node's InternalIP, from the nodes (sampled like the mesh) and from outside.

    externalTrafficPolicy: Local answers only where an endpoint runs, except to a client on the
    node itself (kube-proxy short-circuits local and pod sources): elsewhere a drop is by design.
    """
    for sp, eps in svc_ports:
        if not sp.node_port:
            continue
        ready_nodes = {e.node for e in eps}
        for src in [node_v[n] for n in nodes if n in node_v] + ([ext] if ext else []):
            for tgt in (reach(src.node) if src.node else nodes):
                ip = view.internal_ip(tgt)
                if not ip:
                    continue
                expect = REACHABLE
                if sp.external_traffic_policy == "Local" and tgt not in ready_nodes and src.node != tgt:
                    expect = UNREACHABLE
                plan.tests.append(_http("nodeport", src, ip, sp.node_port, cfg.health_path, f"{sp.ref}@{tgt}", tgt,
                                        expect))


def _hostport_tests(plan: Plan, view: ClusterView, cfg: PlanConfig, echo, node_v: dict) -> None:
    for node, pods in sorted(echo.items()):
        ip = view.internal_ip(node)
        for p in pods:
            for hp in p.host_ports:
                for src in sorted(node_v):
                    plan.tests.append(_http("hostport", node_v[src], ip, hp, cfg.health_path, f"{p.name}@{node}", node))


def _kubelet_tests(plan: Plan, view: ClusterView, cfg: PlanConfig, nodes: list[str], node_v: dict,
                   ext: Vantage | None) -> None:
    """kubelet from the control plane (kubectl logs/exec, FM-36) must work; from outside (FM-39) must not."""
    cps = [n for n in control_planes(view) if n in node_v]
    if not cps:
        plan.notes.append("no control-plane node with a vantage: kubelet reachability from the control plane "
                          "is not tested")
    sources = [(node_v[cps[0]], REACHABLE)] if cps else []
    sources += [(ext, UNREACHABLE)] if ext else []
    for src, expect in sources:
        for n in nodes:
            ip, port = view.internal_ip(n), kubelet_port(view, n, cfg.kubelet_port)
            if ip:
                plan.tests.append(Test(f"kubelet:{src.id}->{n}@{ip}:{port}:syn", CONN, "syn", "kubelet", src, ip, port,
                                       "tcp", n, n, expect))
