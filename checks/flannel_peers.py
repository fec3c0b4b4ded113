"""flannel VXLAN: per-peer FDB/neighbour/route entries, podCIDRs.

flanneld announces each node (annotations) and programs every peer into the kernel; cross-node
pod traffic breaks when the two disagree, or when a node's podCIDR is missing or collides. These
rules compare the two worlds node pair by node pair. The device, VTEP address and MTU are judged
in checks/flannel.py; what both modules share lives in checks/_flannel_common.py.
"""
from __future__ import annotations

import ipaddress

from k8snetdoctor import flannel_facts as ff
from k8snetdoctor import flannel_peer_tables as fpt
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Evidence, EvidenceRef, Finding, Remediation
from k8snetdoctor.rule import CLUSTER, EvidenceSet, Explains, Rule, inventory_ref

from ._active import CROSSNODE, NODE_DATAPLANE, same_pair
from ._flannel_common import RESTART_FLANNEL, RESTART_K3S, TROUBLESHOOTING, gate, narrow, nodes_with, ref

PEERS = Rule(
    id="flannel.peers",
    title="Each node has the FDB, neighbour and route entries for every peer",
    description=(
        "For each peer flanneld programs an FDB entry `<VtepMAC> dst <public-ip> self permanent`, a "
        "PERMANENT neighbour `<podCIDR .0> lladdr <VtepMAC>` and a route `<podCIDR> via <podCIDR .0> dev "
        "flannel.1 onlink`. A missed lease event, a peer whose flannel.1 was recreated (new MAC) or a "
        "changed node IP leaves one of them missing or stale, and only that node pair breaks."
    ),
    severity="high",
    needs=(CLUSTER, "fdb", "neigh", "routes"),
    failureModes=("FM-09",),
    references=(TROUBLESHOOTING, "https://github.com/flannel-io/flannel/issues/1119",
                "https://github.com/flannel-io/flannel/issues/654", "https://github.com/k3s-io/k3s/issues/3006"),
    remediation=Remediation(
        summary="Restart flannel on {node} so it reprograms the entries for {peer}; the manual commands set them directly.",
        commands={"generic": [RESTART_FLANNEL], "k3s": [RESTART_K3S]},
    ),
    # a stale entry for one peer breaks that pair's overlay: the echo and the pod paths between them
    explains=tuple(Explains(r, same_pair) for r in ("vxlan.udp-blocked", *CROSSNODE)),
)

POD_CIDR = Rule(
    id="flannel.podcidr",
    title="Every node has its own podCIDR, disjoint from the others and from node addresses",
    description=(
        "flannel leases each node's spec.podCIDR; without one flanneld exits with 'pod cidr not assigned' "
        "and the node gets no pod network. podCIDRs that overlap each other, or contain node addresses, "
        "send node or LAN traffic into the overlay."
    ),
    severity="critical",
    needs=(CLUSTER,),
    wants=("routes",),
    failureModes=("FM-10", "FM-27"),
    references=(TROUBLESHOOTING + "#kubernetes-specific", "https://github.com/flannel-io/flannel/issues/1550",
                "https://github.com/kubernetes/kubeadm/issues/1185"),
    remediation=Remediation(
        summary="Have the controller-manager allocate podCIDRs from flannel's Network ({network}).",
        commands={
            "generic": ["kubectl patch node {node} -p $'spec:\\n  podCIDR: <a free /24 of {network}>'   # one-off; podCIDR can be set once, never changed"],
            "kubeadm": ["kubeadm init --pod-network-cidr={network}   # at cluster creation",
                        "# existing cluster: add --allocate-node-cidrs=true --cluster-cidr={network} to /etc/kubernetes/manifests/kube-controller-manager.yaml"],
            "k3s": ["# k3s allocates podCIDRs itself: check cluster-cidr in /etc/rancher/k3s/config.yaml on the server"],
        },
    ),
    explains=("flannel.peers", "flannel.vtep-address", "flannel.vxlan-device", *NODE_DATAPLANE),
)
FIX_OVERLAP = Remediation(
    summary="Pick disjoint ranges for nodes, pods and services; {node}'s podCIDR {cidr} collides with {other}.",
    commands={
        "generic": ["# usually needs a rebuild: new cluster-cidr disjoint from the node network, then re-register the nodes"],
        "kubeadm": ["kubeadm init --pod-network-cidr=10.244.0.0/16   # and the same Network in kube-flannel-cfg net-conf.json"],
    },
)


# -- flannel.peers --------------------------------------------------------------------------------
@PEERS.judge
def judge_peers(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    if (skip := gate(PEERS, view, evidence)):
        return [skip]
    out: list[Finding] = []
    conf = ff.net_conf(view)
    everyone = [ff.peer(view, n) for n in view.node_names()]
    live = {p.mac for p in everyone if p.mac}
    nodes = nodes_with(view, evidence, "fdb")
    devs = ff.device_names(view, nodes)
    for node in nodes:
        evs = {k: evidence.get(k, node) for k in ("fdb", "neigh", "routes")}
        bad = sorted(k for k, e in evs.items() if e is None or not e.ok)
        if bad:
            out.append(PEERS.skip(f"{node}: no {'/'.join(bad)} evidence", nodes=[node]))
            continue
        t = fpt.index_tables(devs[node], *(list(evs[k].data or []) for k in ("fdb", "neigh", "routes")))
        own = {a for a in (ff.peer(view, node).public_ip, ff.vtep_local(evidence, node)) if a}
        failed, direct = False, 0
        for p in everyone:
            if p.name == node:
                continue
            if not (p.mac and p.public_ip and p.cidr):
                missing = [k for k, v in (("VtepMAC", p.mac), ("public-ip", p.public_ip), ("podCIDR", p.cidr)) if not v]
                out.append(PEERS.skip(f"{node}->{p.name}: {p.name} has no {', '.join(missing)} "
                                      f"(see flannel.vtep-address / flannel.podcidr)", pairs=[[node, p.name]]))
                continue
            chk = fpt.check_pair(t, p, own, live, bool(conf and conf.direct_routing))
            direct += chk.direct
            if chk.hard or chk.soft:  # healthy pairs are summed up per node: N² pass lines help nobody
                failed = True
                out.append(_pair_finding(node, p, t.dev, chk, evs))
        extra, fixes = fpt.orphans(t, everyone)
        if extra:
            out.append(PEERS.warn(f"{node}: {len(extra)} {t.dev} entr{'ies' if len(extra) > 1 else 'y'} for no current node "
                                  f"(left by removed nodes): {'; '.join(extra)}", nodes=[node], severity="low",
                                  evidence=[ref(evs['fdb'], extra)], values={"node": node, "peer": "removed nodes"},
                                  remediation=Remediation.combine(PEERS.remediation, common=[f"{c}   # on {{node}}" for c in fixes])))
        elif not failed:
            via = f" ({direct} by DirectRouting)" if direct else ""
            out.append(PEERS.ok(f"{node}: FDB, neighbour and route entries match all {len(everyone) - 1} peer(s){via}",
                                nodes=[node], evidence=[ref(evs["routes"], ff.pod_routes(t.all_routes, None))]))
    return out


def _pair_finding(node: str, p: ff.Peer, dev: str, chk: fpt.PairCheck, evs: dict[str, Evidence]) -> Finding:
    want = fpt.expected_lines(p, dev)
    lines = [f"expected {k}: {v}" for k, v in want.items()] + (chk.found or ["found: nothing for this peer"])
    refs = [ref(evs["fdb"], lines)]
    pair = [[node, p.name]]
    rem = Remediation.combine(PEERS.remediation, common=[f"{c}   # on {{node}}" for c in chk.fixes])
    values = {"node": node, "peer": p.name}
    if chk.hard:
        msg = f"{node}->{p.name}: " + "; ".join(chk.hard + chk.soft) + " (FM-09)"
        return PEERS.fail(msg, pairs=pair, evidence=refs, values=values, remediation=rem)
    msg = (f"{node}->{p.name}: " + "; ".join(chk.soft) + ". Harmless while the neighbour entry uses the current MAC, "
           "but flanneld's state for this peer is stale (FM-09)")
    return PEERS.warn(msg, pairs=pair, evidence=refs, values=values, remediation=rem, severity="low")


# -- flannel.podcidr ------------------------------------------------------------------------------
@POD_CIDR.judge
def judge_podcidr(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    if (skip := gate(POD_CIDR, view, evidence, vxlan=False)):
        return [skip]
    conf = ff.net_conf(view)
    network = (conf.network if conf else None) or view.cluster_cidr() or "10.244.0.0/16"
    cidrs = {n: ff.ipv4_pod_cidr(view, n) for n in view.node_names()}
    ips = {n: ipaddress.ip_address(ip) for n in view.node_names() if (ip := view.internal_ip(n))}
    out = []
    for node, cidr in cidrs.items():
        values = {"node": node, "network": network, "cidr": cidr}
        refs = _cidr_refs(evidence, node, cidr)
        if cidr is None:
            msg = (f"{node} has no spec.podCIDR: flanneld there fails with 'pod cidr not assigned' and the node gets "
                   f"no pod network; the controller-manager is not allocating node CIDRs (kubeadm init without "
                   f"--pod-network-cidr, or --allocate-node-cidrs=false) (FM-10)")
            out.append(narrow(POD_CIDR.fail(msg, nodes=[node], values=values, evidence=refs), {"FM-10"}))
            continue
        problems, fms, other = ff.cidr_conflicts(node, cidr, cidrs, ips, conf)
        values["other"] = other
        if problems:
            rem = FIX_OVERLAP if "FM-27" in fms and "FM-10" not in fms else POD_CIDR.remediation
            out.append(narrow(POD_CIDR.fail(f"{node}: " + "; ".join(problems), nodes=[node], values=values,
                                             remediation=rem, evidence=refs), fms))
        else:
            out.append(POD_CIDR.ok(f"{node}: podCIDR {cidr}, inside {network}, disjoint from other nodes and node IPs",
                                   nodes=[node], evidence=refs))
    return out


def _cidr_refs(evidence: EvidenceSet, node: str, cidr: ipaddress.IPv4Network | None) -> list[EvidenceRef]:
    """The inventory fact, plus the node's own pod-network routes when collected: they show what
    the kernel does with it (a node without a podCIDR often has no pod routes at all)."""
    refs = [inventory_ref(f"Node {node} spec.podCIDR: {cidr or '(absent)'}")]
    ev = evidence.get("routes", node)
    if ev is not None and ev.ok:
        pod_net = ff.pod_routes(ev.data or [], cidr)
        refs.append(EvidenceRef.to(ev, "\n".join([f"pod-network routes on {node}:"] + (pod_net or ["(none)"]))))
    return refs
