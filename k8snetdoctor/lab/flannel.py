"""What flanneld (vxlan backend, kube subnet manager) programs on a node.

Written as `ip`/`bridge` batch lines rather than executed here, so the builder can send a
node's whole programming in one process, and a fault can reuse the per-peer lines to take one
peer's route, neighbour or FDB entry away and put it back.
"""
from __future__ import annotations

from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.rules import Ruleset, comment

DEV = "flannel.1"
KUBE_PROXY_MARK = "0x4000/0x4000"


def link_lines(node: S.NodeSpec, underlay_dev: str = "eth0") -> list[str]:
    """flannel.1 as flanneld creates it: VNI 1, port 8472, nolearning, MTU = underlay - 50."""
    return [
        f"link add {DEV} address {node.vtep_mac} mtu {S.VXLAN_MTU} type vxlan id {S.VXLAN_VNI} "
        f"local {node.ip} dev {underlay_dev} dstport {S.VXLAN_PORT} nolearning",
        f"addr add {node.vtep_ip}/32 dev {DEV}",
        f"link set {DEV} up",
    ]


def peer_ip_lines(peer: S.NodeSpec, action: str = "add") -> list[str]:
    """The route and permanent neighbour flanneld adds for one remote node's lease."""
    if action == "del":
        return [f"route del {peer.pod_cidr} via {peer.vtep_ip} dev {DEV} onlink",
                f"neigh del {peer.vtep_ip} dev {DEV}"]
    return [f"route replace {peer.pod_cidr} via {peer.vtep_ip} dev {DEV} onlink",
            f"neigh replace {peer.vtep_ip} lladdr {peer.vtep_mac} dev {DEV} nud permanent"]


def peer_fdb_lines(peer: S.NodeSpec, action: str = "append") -> list[str]:
    """`bridge fdb append <VtepMAC> dev flannel.1 dst <peer IP>`, or its removal."""
    if action == "del":
        return [f"fdb del {peer.vtep_mac} dev {DEV} dst {peer.ip}"]
    return [f"fdb append {peer.vtep_mac} dev {DEV} dst {peer.ip}"]


def subnet_env(node: S.NodeSpec) -> str:
    """/run/flannel/subnet.env, which the flannel CNI plugin reads for the pod MTU and subnet."""
    return (f"FLANNEL_NETWORK={S.CLUSTER_CIDR}\nFLANNEL_SUBNET={node.gateway}/24\n"
            f"FLANNEL_MTU={S.VXLAN_MTU}\nFLANNEL_IPMASQ=true\n")


def masq_ruleset(node: S.NodeSpec, cluster_cidr: str = S.CLUSTER_CIDR) -> Ruleset:
    """FLANNEL-POSTRTG and FLANNEL-FWD as flanneld >= 0.20 writes them (--ip-masq, random-fully)."""
    rs = Ruleset()
    masq = comment("flanneld masq")
    rs.add("nat", "POSTROUTING", f"{masq} -j FLANNEL-POSTRTG")
    rs.add("nat", "FLANNEL-POSTRTG", f"-m mark --mark {KUBE_PROXY_MARK} {masq} -j RETURN")
    rs.add("nat", "FLANNEL-POSTRTG", f"-s {node.pod_cidr} -d {cluster_cidr} {masq} -j RETURN")
    rs.add("nat", "FLANNEL-POSTRTG", f"-s {cluster_cidr} -d {node.pod_cidr} {masq} -j RETURN")
    rs.add("nat", "FLANNEL-POSTRTG", f"! -s {cluster_cidr} -d {node.pod_cidr} {masq} -j RETURN")
    rs.add("nat", "FLANNEL-POSTRTG", f"-s {cluster_cidr} ! -d 224.0.0.0/4 {masq} -j MASQUERADE --random-fully")
    rs.add("nat", "FLANNEL-POSTRTG", f"! -s {cluster_cidr} -d {cluster_cidr} {masq} -j MASQUERADE --random-fully")
    fwd = comment("flanneld forward")
    rs.add("filter", "FORWARD", f"{fwd} -j FLANNEL-FWD")
    rs.add("filter", "FLANNEL-FWD", f"-s {cluster_cidr} {fwd} -j ACCEPT")
    rs.add("filter", "FLANNEL-FWD", f"-d {cluster_cidr} {fwd} -j ACCEPT")
    return rs


def owns(chain: str) -> bool:
    return chain.startswith("FLANNEL-")
