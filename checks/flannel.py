"""flannel VXLAN: the device, the VTEP address, MTU.

flanneld announces each node (annotations) and programs every peer into the kernel; cross-node
pod traffic breaks when the two disagree, when every node announces the same address, or when
the overlay MTU does not fit the underlay. These rules compare the two worlds node by node.
Per-peer FDB/neighbour/route entries and podCIDRs are judged in checks/flannel_peers.py.
"""
from __future__ import annotations

from k8snetdoctor import flannel_facts as ff
from k8snetdoctor.cluster.view import FLANNEL, ClusterView
from k8snetdoctor.model import Evidence, Finding, Remediation
from k8snetdoctor.rule import CLUSTER, EvidenceSet, Rule

from ._active import NODE_DATAPLANE
from ._flannel_common import RESTART_FLANNEL, RESTART_K3S, TROUBLESHOOTING, gate, narrow, nodes_with, ref

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
    explains=("flannel.peers", "vxlan.udp-blocked", *NODE_DATAPLANE),
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
    explains=("flannel.peers", "vxlan.udp-blocked", *NODE_DATAPLANE),
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
    explains=("mtu.path",),
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


# -- shared by the device, VTEP and MTU rules -----------------------------------------------------
def _devices(view: ClusterView | None, evidence: EvidenceSet, rule: Rule, out: list[Finding]) -> dict:
    """node -> (links evidence, all links, flannel device or None); skips nodes without evidence."""
    found, nodes = {}, nodes_with(view, evidence, "links")
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
    if (skip := gate(VXLAN_DEVICE, view, evidence)):
        return [skip]
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
            out.append(narrow(VXLAN_DEVICE.fail(msg, nodes=[node], evidence=[ev], values=values), {"FM-11"}))
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
            out.append(narrow(VXLAN_DEVICE.fail(msg, nodes=[node], evidence=[ref(ev, lines)], values=values), fms))
        else:
            out.append(VXLAN_DEVICE.ok(f"{node}: {dev['name']} vxlan id {vx.get('id')} dstport {port}",
                                       nodes=[node], evidence=[ref(ev, lines)]))
    return out


# -- flannel.vtep-address -------------------------------------------------------------------------
@VTEP_ADDRESS.judge
def judge_vtep_address(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    if (skip := gate(VTEP_ADDRESS, view, evidence)):
        return [skip]
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
    refs = [ref(devices[n][0], [ff.vx_line(devices[n][2]), f"InternalIP {ips[n]}; public-ip annotation "
                                 f"{ff.peer(view, n).public_ip}"]) for n in nodes if n in devices]
    values = {"nodes": ", ".join(nodes), "address": addr, "iface": iface or "enp0s8"}
    f = VTEP_ADDRESS.fail(msg, nodes=nodes, evidence=refs, values=values, remediation=FIX_SHARED)
    return narrow(f, {"FM-05"})


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
                               f"{len(seen)} peer(s) tunnel to it", nodes=[node], evidence=[ref(ev, lines)])
    f = VTEP_ADDRESS.fail(f"{node}: " + "; ".join(problems), nodes=[node], evidence=[ref(ev, lines)], values=values,
                          remediation=Remediation.combine(*fixes) if fixes else VTEP_ADDRESS.remediation)
    return narrow(f, fms)


# -- flannel.mtu ----------------------------------------------------------------------------------
@MTU.judge
def judge_mtu(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    if (skip := gate(MTU, view, evidence)):
        return [skip]
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
                                nodes=[node], evidence=[ref(ev, lines)], values=values))
        elif bridge and bridge.get("mtu") and int(bridge["mtu"]) > mtu:
            out.append(MTU.warn(f"{head}, but cni0 mtu {bridge['mtu']}: pods send packets larger than {dev['name']} "
                                f"carries, relying on fragmentation / PMTU discovery (FM-08)",
                                nodes=[node], evidence=[ref(ev, lines)], values={**values, "expected": mtu}, severity="medium"))
        elif mtu < limit:
            out.append(MTU.warn(f"{head}: legal but wasteful, every pod packet is {limit - mtu} bytes smaller than the "
                                f"underlay allows (flannel#841 pattern) (FM-08)",
                                nodes=[node], evidence=[ref(ev, lines)], values=values, severity="low"))
        else:
            out.append(MTU.ok(head, nodes=[node], evidence=[ref(ev, lines)]))
    if len(set(mtus.values())) > 1:
        listing = ", ".join(f"{n}={m}" for n, m in sorted(mtus.items()))
        out.append(MTU.warn(f"flannel device MTU differs between nodes ({listing}): nodes with the larger MTU send "
                            f"packets the others' path may not carry (FM-08)", nodes=sorted(mtus), severity="medium",
                            values={"node": "<each node>", "expected": min(mtus.values())}))
    return out

