"""flannel VXLAN: the device, the VTEP address, per-peer FDB/neighbour/route entries, MTU, podCIDRs.

flanneld announces each node (annotations) and programs every peer into the kernel; cross-node
pod traffic breaks when the two disagree, when every node announces the same address, or when
the overlay MTU does not fit the underlay. These rules compare the two worlds node by node.
"""
from __future__ import annotations

import ipaddress

from k8snetdoctor import flannel_facts as ff
from k8snetdoctor.cluster.view import FLANNEL, ClusterView
from k8snetdoctor.model import Evidence, EvidenceRef, Finding, Remediation
from k8snetdoctor.rule import CLUSTER, EvidenceSet, Rule, inventory_ref

TROUBLESHOOTING = "https://github.com/flannel-io/flannel/blob/master/Documentation/troubleshooting.md"
RESTART_FLANNEL = "kubectl -n kube-flannel delete pod -l app=flannel --field-selector spec.nodeName={node}   # kube-system in older manifests"
RESTART_K3S = "systemctl restart k3s-agent   # on {node}; k3s on servers (flannel is embedded in k3s)"

VXLAN_DEVICE = Rule(
    id="flannel.vxlan-device",
    title="flannel VXLAN device present with the cluster's VNI and port",
    description=(
        "Every node needs flannel.<VNI> of kind vxlan. A node without it cannot take part in the "
        "overlay (flanneld not running, kernel without VXLAN as on WSL2). A node whose VNI or UDP port "
        "differs from its peers sends packets the others silently drop: the kernel only accepts VXLAN "
        "with its own VNI on its own port (8472 by default for flannel, not IANA 4789)."
    ),
    severity="critical",
    needs=("links",),
    failureModes=("FM-11", "FM-01"),
    references=(TROUBLESHOOTING, "https://github.com/flannel-io/flannel/blob/master/Documentation/backends.md#vxlan",
                "https://github.com/k3s-io/k3s/issues/9295"),
    remediation=Remediation(
        summary="Recreate {device} on {node} with the cluster's VNI {vni} and port {port} by restarting flannel there.",
        commands={
            "generic": ["kubectl -n kube-flannel get cm kube-flannel-cfg -o yaml | grep -A12 net-conf.json   # Backend VNI/Port must suit every node",
                        "ip -d link show {device}   # on {node}: expect 'vxlan id {vni} ... dstport {port}'",
                        RESTART_FLANNEL],
            "k3s": ["lsmod | grep vxlan || modprobe vxlan   # on {node}", RESTART_K3S],
        },
    ),
    explains=("flannel.peers",),
)

VTEP_ADDRESS = Rule(
    id="flannel.vtep-address",
    title="flannel VTEP address is the node's own, reachable address",
    description=(
        "Peers send VXLAN for a node to its public-ip annotation; flanneld takes it, and flannel.1's "
        "`local`, from the interface it picked at start. If every node picked a NIC with the same "
        "address (Vagrant/VirtualBox NAT, 10.0.2.15) each node tunnels to itself. If it picked a "
        "different NIC than kubelet (multi-NIC, k3s without flannel-iface) VXLAN leaves through a NIC "
        "that cannot reach the peers. A public-ip peers cannot reach (NAT) or one flanneld has not "
        "re-read (overwrite set, no restart) black-holes the node's pods."
    ),
    severity="critical",
    needs=(CLUSTER, "links", "fdb"),
    failureModes=("FM-05", "FM-06", "FM-07"),
    references=(TROUBLESHOOTING, "https://github.com/flannel-io/flannel/issues/535",
                "https://github.com/k3s-io/k3s/issues/4645", "https://github.com/flannel-io/flannel/issues/712",
                "https://docs.k3s.io/networking/basic-network-options"),
    remediation=Remediation(summary="flanneld on {node} has not announced itself: find out why and restart it.",
                            commands={"generic": ["kubectl -n kube-flannel logs --tail=50 $(kubectl -n kube-flannel get pod -l app=flannel --field-selector spec.nodeName={node} -o name)",
                                                  RESTART_FLANNEL],
                                      "k3s": ["journalctl -u k3s-agent -u k3s --since -1h | grep -i flannel   # on {node}", RESTART_K3S]}),
    explains=("flannel.peers",),
)
FIX_SHARED = Remediation(
    summary="Make flannel (and kubelet) on {nodes} use the host-only/private NIC ({iface}), not the NAT NIC with {address}.",
    commands={
        "generic": ["kubectl -n kube-flannel set env ds/kube-flannel-ds FLANNELD_IFACE={iface}   # = --iface; or --iface-can-reach=<a peer's IP>; restarts the pods",
                    "echo 'KUBELET_EXTRA_ARGS=--node-ip=<this node's {iface} address>' > /etc/default/kubelet && systemctl restart kubelet   # on each node, if INTERNAL-IP is {address} too"],
        "k3s": ["printf 'flannel-iface: {iface}\\nnode-ip: <this node's {iface} address>\\n' >> /etc/rancher/k3s/config.yaml && systemctl restart k3s-agent   # on each node (k3s on servers)"],
    },
)
FIX_IFACE = Remediation(
    summary="Make flannel and kubelet on {node} agree: flannel.1 uses {local} ({dev}) but the InternalIP is {internal_ip} ({iface}).",
    commands={
        "generic": ["kubectl -n kube-flannel set env ds/kube-flannel-ds FLANNELD_IFACE={iface}   # flannel follows kubelet's NIC",
                    "# or, if {local} is the address peers should use: kubelet --node-ip={local} (KUBELET_EXTRA_ARGS in /etc/default/kubelet) on {node}"],
        "k3s": ["printf 'flannel-iface: {iface}\\nnode-ip: {internal_ip}\\n' >> /etc/rancher/k3s/config.yaml && systemctl restart k3s-agent   # on {node}"],
        "kubeadm": ["kubectl -n kube-flannel set env ds/kube-flannel-ds FLANNELD_IFACE={iface}   # flannel follows kubelet's NIC",
                    "# or, if {local} is the address peers should use: echo 'KUBELET_EXTRA_ARGS=--node-ip={local}' > /etc/default/kubelet && systemctl restart kubelet   # on {node}"],
    },
)
FIX_PUBLIC_IP = Remediation(
    summary="Give {node} a public-ip its peers reach ({reachable}) and restart flannel on it so peers reprogram their FDB.",
    commands={
        "generic": ["kubectl annotate node {node} flannel.alpha.coreos.com/public-ip-overwrite={reachable} --overwrite",
                    RESTART_FLANNEL],
        "k3s": ["# /etc/rancher/k3s/config.yaml on {node}: node-external-ip: {reachable} and flannel-external-ip: true", RESTART_K3S],
    },
)

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
)

MTU = Rule(
    id="flannel.mtu",
    title="flannel.1 MTU fits the underlay",
    description=(
        "VXLAN adds 50 bytes, so flannel.1's MTU must be at most the underlay NIC's MTU minus 50. "
        "Larger, and full-size packets are dropped after encapsulation: ping and small requests work, "
        "TLS handshakes and large transfers hang. Much smaller (flannel.1 1500 on a 9001 AWS NIC) "
        "works but wastes throughput. Nodes with different MTUs send each other packets that do not fit."
    ),
    severity="high",
    needs=("links",),
    failureModes=("FM-08",),
    references=("https://github.com/flannel-io/flannel/issues/841", TROUBLESHOOTING,
                "https://github.com/flannel-io/flannel/issues/1011"),
    remediation=Remediation(
        summary="Set {device} on {node} to {expected} ({underlay} MTU {underlay_mtu} - 50) and recreate pods so their veths follow.",
        commands={
            "generic": ["ip link set dev {device} mtu {expected}   # on {node}; immediate, lost on flannel restart",
                        "# fix the underlay MTU or the interface flannel picks, then restart flannel: it sets {underlay} MTU - 50",
                        RESTART_FLANNEL, "kubectl delete pod -A --field-selector spec.nodeName={node}   # veths keep the old MTU until pods are recreated"],
            "k3s": ["ip link set dev {device} mtu {expected}   # on {node}; immediate, lost on restart", RESTART_K3S,
                    "kubectl delete pod -A --field-selector spec.nodeName={node}   # veths keep the old MTU until pods are recreated"],
        },
    ),
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
    explains=("flannel.peers", "flannel.vtep-address", "flannel.vxlan-device"),
)
FIX_OVERLAP = Remediation(
    summary="Pick disjoint ranges for nodes, pods and services; {node}'s podCIDR {cidr} collides with {other}.",
    commands={
        "generic": ["# usually needs a rebuild: new cluster-cidr disjoint from the node network, then re-register the nodes"],
        "kubeadm": ["kubeadm init --pod-network-cidr=10.244.0.0/16   # and the same Network in kube-flannel-cfg net-conf.json"],
    },
)


# -- shared -------------------------------------------------------------------------------------
def _gate(rule: Rule, view: ClusterView | None, evidence: EvidenceSet, vxlan: bool = True) -> Finding | None:
    det = ff.detect(view, evidence)
    return None if (det.vxlan if vxlan else det.flannel) else rule.skip(det.reason)


def _nodes(view: ClusterView | None, evidence: EvidenceSet, kind: str) -> list[str]:
    return sorted(set(view.node_names() if view else []) | {e.node for e in evidence.all(kind) if e.node})


def _narrow(f: Finding, fms: set[str]) -> Finding:
    """A finding cites the failure modes it actually recognised, not every one its rule knows."""
    f.failureModes = sorted(fms)
    return f


def _ref(ev: Evidence, lines: list[str]) -> EvidenceRef:
    return EvidenceRef.to(ev, "\n".join(lines))


def _devices(view: ClusterView | None, evidence: EvidenceSet, rule: Rule, out: list[Finding]) -> dict:
    """node -> (links evidence, all links, flannel device or None); skips nodes without evidence."""
    found, nodes = {}, _nodes(view, evidence, "links")
    devs = ff.device_names(view, nodes)
    for node in nodes:
        ev = evidence.get("links", node)
        if ev is None or not ev.ok:
            out.append(rule.skip(f"{node}: no links evidence" + (f" ({ev.error})" if ev else ""), nodes=[node]))
            continue
        links = list(ev.data or [])
        found[node] = (ev, links, ff.find_link(links, devs[node]))
    return found


# -- flannel.vxlan-device -------------------------------------------------------------------------
@VXLAN_DEVICE.judge
def judge_vxlan_device(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    if (gate := _gate(VXLAN_DEVICE, view, evidence)):
        return [gate]
    out: list[Finding] = []
    devices = _devices(view, evidence, VXLAN_DEVICE, out)
    conf, vni = ff.net_conf(view), ff.expected_vni(view)
    port = (conf.port if conf else None) or ff.majority((d.get("vxlan") or {}).get("port")
                                                        for _, _, d in devices.values() if d) or ff.DEFAULT_PORT
    for node, (ev, links, dev) in devices.items():
        name = ff.device_name(view, node)
        values = {"node": node, "device": name, "vni": vni, "port": port}
        if dev is None or dev.get("kind") != "vxlan" or not dev.get("vxlan"):
            what = "is missing" if dev is None else f"is of kind {dev.get('kind')}, not vxlan"
            msg = (f"{node}: {name} {what}: this node is not on the overlay (flanneld not running, or a "
                   f"kernel without VXLAN as on WSL2) (FM-11)")
            out.append(_narrow(VXLAN_DEVICE.fail(msg, nodes=[node], evidence=[ev], values=values), {"FM-11"}))
            continue
        vx, problems, fms = dev["vxlan"], [], set()
        ann = ff.annotation_vni(view, node)
        if ann is not None and ann != vni:
            problems.append(f"its backend-data annotation announces VNI {ann} while the cluster uses {vni}")
        if vx.get("id") != (ann or vni):
            problems.append(f"vxlan id {vx.get('id')}, expected {ann or vni}")
        if vx.get("port") != port:
            problems.append(f"dstport {vx.get('port')}, expected {port} like its peers"
                            + (f" ({conf.where})" if conf and conf.port else ""))
            fms.add("FM-01")
        if dev.get("state") == "DOWN":
            problems.append(f"{dev['name']} is DOWN")
        lines = [ff.vx_line(dev)]
        if problems:
            msg = (f"{node}: {'; '.join(problems)}. Peers drop VXLAN whose VNI or port differs from their own.")
            out.append(_narrow(VXLAN_DEVICE.fail(msg, nodes=[node], evidence=[_ref(ev, lines)], values=values), fms))
        else:
            out.append(VXLAN_DEVICE.ok(f"{node}: {dev['name']} vxlan id {vx.get('id')} dstport {port}",
                                       nodes=[node], evidence=[_ref(ev, lines)]))
    return out


# -- flannel.vtep-address -------------------------------------------------------------------------
@VTEP_ADDRESS.judge
def judge_vtep_address(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    if (gate := _gate(VTEP_ADDRESS, view, evidence)):
        return [gate]
    out: list[Finding] = []
    devices = {n: d for n, d in _devices(view, evidence, VTEP_ADDRESS, out).items() if d[2] and d[2].get("vxlan")}
    local = {n: d[2]["vxlan"].get("local") for n, d in devices.items()}
    public = {n: ff.peer(view, n).public_ip for n in devices}
    by_addr: dict[str, set[str]] = {}
    for table in (local, public):
        for n, a in table.items():
            if a:
                by_addr.setdefault(a, set()).add(n)
    grouped: set[str] = set()
    for addr, nodes in sorted(by_addr.items()):
        if len(nodes) > 1 and not nodes & grouped:
            grouped |= nodes
            out.append(_shared(view, devices, addr, sorted(nodes)))
    senders = ff.fdb_senders(evidence, ff.device_names(view, view.node_names()))
    for node, (ev, links, dev) in devices.items():
        if node not in grouped:
            out.append(_own_address(view, senders, node, ev, links, dev))
    return out


def _shared(view: ClusterView, devices: dict, addr: str, nodes: list[str]) -> Finding:
    ips = {n: view.internal_ip(n) for n in nodes}
    first = next((n for n in nodes if n in devices and ips[n] != addr), None)
    iface = (ff.link_with_address(devices[first][1], ips[first]) or {}).get("name") if first else None
    nat = " the VirtualBox/Vagrant NAT address every VM gets:" if addr == ff.VAGRANT_NAT_IP else ""
    used = sorted({(d[2]["vxlan"].get("dev") or "?") for n, d in devices.items() if n in nodes})
    msg = (f"{', '.join(nodes)} all use {addr} as their VXLAN endpoint (flannel.1 local / public-ip annotation), "
           f"so peers' FDB entries point at {addr} and every node tunnels to itself. {addr} is{nat} flannel chose "
           f"the interface of the default route ({', '.join(used)}) instead of the NIC carrying each node's own "
           f"address (InternalIPs: {', '.join(f'{n}={ips[n]}' for n in nodes)}) (FM-05)")
    refs = [_ref(devices[n][0], [ff.vx_line(devices[n][2]), f"InternalIP {ips[n]}; public-ip annotation "
                                 f"{ff.peer(view, n).public_ip}"]) for n in nodes if n in devices]
    values = {"nodes": ", ".join(nodes), "address": addr, "iface": iface or "enp0s8"}
    f = VTEP_ADDRESS.fail(msg, nodes=nodes, evidence=refs, values=values, remediation=FIX_SHARED)
    return _narrow(f, {"FM-05"})


def _own_address(view: ClusterView, senders: dict, node: str, ev: Evidence, links: list[dict], dev: dict) -> Finding:
    vx = dev["vxlan"]
    local, ip, info = vx.get("local"), view.internal_ip(node), ff.peer(view, node)
    ann = view.annotations(node)
    raw, over = ann.get(FLANNEL + "public-ip"), ann.get(FLANNEL + "public-ip-overwrite")
    iface = (ff.link_with_address(links, ip) or {}).get("name")
    seen = {n: d for n, d in senders.get(info.mac or "", {}).items() if n != node}
    problems, fms = ff.address_problems(node, local, vx.get("dev"), ip, iface, raw, over, info, seen)
    fixes = [FIX_IFACE] if "FM-06" in fms else []
    if "FM-07" in fms:
        fixes.append(FIX_PUBLIC_IP)
    lines = [ff.vx_line(dev), f"InternalIP {ip}; public-ip {raw}" + (f"; public-ip-overwrite {over}" if over else "")]
    lines += [f"{p}: fdb {info.mac} dst {d}" for p, d in sorted(seen.items())]
    values = {"node": node, "local": local, "dev": vx.get("dev"), "internal_ip": ip, "iface": iface or "<NIC with " + str(ip) + ">",
              "reachable": over or ip or local}
    if not problems:
        return VTEP_ADDRESS.ok(f"{node}: VTEP {local} on {vx.get('dev')} = InternalIP = public-ip; "
                               f"{len(seen)} peer(s) tunnel to it", nodes=[node], evidence=[_ref(ev, lines)])
    f = VTEP_ADDRESS.fail(f"{node}: " + "; ".join(problems), nodes=[node], evidence=[_ref(ev, lines)], values=values,
                          remediation=Remediation.combine(*fixes) if fixes else VTEP_ADDRESS.remediation)
    return _narrow(f, fms)


# -- flannel.peers --------------------------------------------------------------------------------
@PEERS.judge
def judge_peers(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    if (gate := _gate(PEERS, view, evidence)):
        return [gate]
    out: list[Finding] = []
    conf = ff.net_conf(view)
    everyone = [ff.peer(view, n) for n in view.node_names()]
    live = {p.mac for p in everyone if p.mac}
    nodes = _nodes(view, evidence, "fdb")
    devs = ff.device_names(view, nodes)
    for node in nodes:
        evs = {k: evidence.get(k, node) for k in ("fdb", "neigh", "routes")}
        bad = sorted(k for k, e in evs.items() if e is None or not e.ok)
        if bad:
            out.append(PEERS.skip(f"{node}: no {'/'.join(bad)} evidence", nodes=[node]))
            continue
        t = ff.index_tables(devs[node], *(list(evs[k].data or []) for k in ("fdb", "neigh", "routes")))
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
            chk = ff.check_pair(t, p, own, live, bool(conf and conf.direct_routing))
            direct += chk.direct
            if chk.hard or chk.soft:  # healthy pairs are summed up per node: N² pass lines help nobody
                failed = True
                out.append(_pair_finding(node, p, t.dev, chk, evs))
        extra, fixes = ff.orphans(t, everyone)
        if extra:
            out.append(PEERS.warn(f"{node}: {len(extra)} {t.dev} entr{'ies' if len(extra) > 1 else 'y'} for no current node "
                                  f"(left by removed nodes): {'; '.join(extra)}", nodes=[node], severity="low",
                                  evidence=[_ref(evs['fdb'], extra)], values={"node": node, "peer": "removed nodes"},
                                  remediation=Remediation.combine(PEERS.remediation, common=[f"{c}   # on {{node}}" for c in fixes])))
        elif not failed:
            via = f" ({direct} by DirectRouting)" if direct else ""
            out.append(PEERS.ok(f"{node}: FDB, neighbour and route entries match all {len(everyone) - 1} peer(s){via}",
                                nodes=[node], evidence=[_ref(evs["routes"], ff.pod_routes(t.all_routes, None))]))
    return out


def _pair_finding(node: str, p: ff.Peer, dev: str, chk: ff.PairCheck, evs: dict[str, Evidence]) -> Finding:
    want = ff.expected_lines(p, dev)
    lines = [f"expected {k}: {v}" for k, v in want.items()] + (chk.found or ["found: nothing for this peer"])
    refs = [_ref(evs["fdb"], lines)]
    pair = [[node, p.name]]
    rem = Remediation.combine(PEERS.remediation, common=[f"{c}   # on {{node}}" for c in chk.fixes])
    values = {"node": node, "peer": p.name}
    if chk.hard:
        msg = f"{node}->{p.name}: " + "; ".join(chk.hard + chk.soft) + " (FM-09)"
        return PEERS.fail(msg, pairs=pair, evidence=refs, values=values, remediation=rem)
    msg = (f"{node}->{p.name}: " + "; ".join(chk.soft) + ". Harmless while the neighbour entry uses the current MAC, "
           "but flanneld's state for this peer is stale (FM-09)")
    return PEERS.warn(msg, pairs=pair, evidence=refs, values=values, remediation=rem, severity="low")


# -- flannel.mtu ----------------------------------------------------------------------------------
@MTU.judge
def judge_mtu(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    if (gate := _gate(MTU, view, evidence)):
        return [gate]
    out: list[Finding] = []
    mtus: dict[str, int] = {}
    for node, (ev, links, dev) in _devices(view, evidence, MTU, out).items():
        under = ff.underlay(links, dev) if dev and dev.get("vxlan") else None
        if dev is None or under is None or not dev.get("mtu") or not under.get("mtu"):
            what = "no flannel VXLAN device" if dev is None else "the underlay interface of flannel.1 is unknown"
            out.append(MTU.skip(f"{node}: {what}", nodes=[node]))
            continue
        mtu, limit = int(dev["mtu"]), int(under["mtu"]) - ff.VXLAN_OVERHEAD
        mtus[node] = mtu
        lines = [ff.vx_line(dev), f"{under['name']}: mtu {under['mtu']}"]
        bridge = next((l for l in links if l.get("name") == "cni0"), None)
        if bridge and bridge.get("mtu"):
            lines.append(f"cni0: mtu {bridge['mtu']}")
        values = {"node": node, "device": dev["name"], "expected": limit, "underlay": under["name"], "underlay_mtu": under["mtu"]}
        head = f"{node}: {dev['name']} mtu {mtu}, {under['name']} mtu {under['mtu']} (limit {under['mtu']} - 50 = {limit})"
        if mtu > limit:
            out.append(MTU.fail(f"{head}: encapsulated full-size packets exceed the underlay and are dropped; small "
                                f"requests work, large transfers and TLS handshakes hang (FM-08)",
                                nodes=[node], evidence=[_ref(ev, lines)], values=values))
        elif bridge and bridge.get("mtu") and int(bridge["mtu"]) > mtu:
            out.append(MTU.warn(f"{head}, but cni0 mtu {bridge['mtu']}: pods send packets larger than {dev['name']} "
                                f"carries, relying on fragmentation / PMTU discovery (FM-08)",
                                nodes=[node], evidence=[_ref(ev, lines)], values={**values, "expected": mtu}, severity="medium"))
        elif mtu < limit:
            out.append(MTU.warn(f"{head}: legal but wasteful, every pod packet is {limit - mtu} bytes smaller than the "
                                f"underlay allows (flannel#841 pattern) (FM-08)",
                                nodes=[node], evidence=[_ref(ev, lines)], values=values, severity="low"))
        else:
            out.append(MTU.ok(head, nodes=[node], evidence=[_ref(ev, lines)]))
    if len(set(mtus.values())) > 1:
        listing = ", ".join(f"{n}={m}" for n, m in sorted(mtus.items()))
        out.append(MTU.warn(f"flannel device MTU differs between nodes ({listing}): nodes with the larger MTU send "
                            f"packets the others' path may not carry (FM-08)", nodes=sorted(mtus), severity="medium",
                            values={"node": "<each node>", "expected": min(mtus.values())}))
    return out


# -- flannel.podcidr ------------------------------------------------------------------------------
@POD_CIDR.judge
def judge_podcidr(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    if (gate := _gate(POD_CIDR, view, evidence, vxlan=False)):
        return [gate]
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
            out.append(_narrow(POD_CIDR.fail(msg, nodes=[node], values=values, evidence=refs), {"FM-10"}))
            continue
        problems, fms, other = ff.cidr_conflicts(node, cidr, cidrs, ips, conf)
        values["other"] = other
        if problems:
            rem = FIX_OVERLAP if "FM-27" in fms and "FM-10" not in fms else POD_CIDR.remediation
            out.append(_narrow(POD_CIDR.fail(f"{node}: " + "; ".join(problems), nodes=[node], values=values,
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
