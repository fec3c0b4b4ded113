"""A cloud security group, played by a filter chain on each node's underlay interface.

Real security groups sit in front of the host and judge packets before any NAT. The chain
reproduces that by matching the connection's original destination port (conntrack), so a
NodePort DNATed to a pod on another node is still judged as "port 30080". It only drops or
RETURNs, never ACCEPTs, so the node's own rules (kube-proxy's DROP for ETP Local) still apply.
Faults add DROP rules at its top (`rule_drop_from`) and remove them again.
"""
from __future__ import annotations

from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.rules import Ruleset, comment

CHAIN = "LAB-SG"
NODEPORT_RANGE = "30000:32767"


def ruleset(underlay_cidr: str = S.UNDERLAY_CIDR, dev: str = "eth0") -> Ruleset:
    rs = Ruleset()
    jump = f"-i {dev} {comment('lab: security group of the node')} -j {CHAIN}"
    rs.add("filter", "INPUT", jump, -10)
    rs.add("filter", "FORWARD", jump, -10)
    rs.add("filter", CHAIN, "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")
    rs.add("filter", CHAIN, f"-s {underlay_cidr} {comment('lab: allow all traffic inside the VPC')} -j RETURN")
    for proto in ("tcp", "udp"):
        rs.add("filter", CHAIN, f"-p {proto} -m conntrack --ctorigdstport {NODEPORT_RANGE} "
                                f"{comment('lab: NodePorts from anywhere')} -j RETURN")
    rs.add("filter", CHAIN, f"-p tcp -m conntrack --ctorigdstport {S.APISERVER_PORT} "
                            f"{comment('lab: kube-apiserver from anywhere')} -j RETURN")
    rs.add("filter", CHAIN, f"{comment('lab: deny everything else from outside the VPC')} -j DROP")
    return rs


def rule_drop_from(source: str, proto: str | None = None, dport: int | None = None,
                   note: str = "lab fault") -> list[str]:
    """iptables words for `iptables -I LAB-SG 1 <words>` (and `-D LAB-SG <words>` to undo)."""
    words = ["-s", source]
    if proto:
        words += ["-p", proto]
        if dport:
            words += ["-m", proto, "--dport", str(dport)]
    return words + ["-m", "comment", "--comment", note, "-j", "DROP"]


def owns(chain: str) -> bool:
    return chain == CHAIN
