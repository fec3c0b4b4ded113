"""The containernetworking `portmap` plugin's iptables chains for a node's hostPort pods.

Real hostPorts are not kube-proxy's: the CNI plugin writes CNI-HOSTPORT-* and one CNI-DN-<hash>
chain per pod sandbox. The lab reproduces them from the ClusterView (pods with a hostPort on
the node) so "portmap missing" can be shown by removing exactly these chains.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.lab.rules import Ruleset, comment

MARK = "0x2000/0x2000"          # markMasqBit 13, the plugin's default
NETWORK = "cbr0"                # flannel's conflist network name


@dataclass(frozen=True)
class PortMapping:
    sandbox_id: str
    pod_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"


def dn_chain(network: str, container_id: str) -> str:
    """utils.MustFormatChainNameWithPrefix: "CNI-DN-" + sha512(name + id) hex, 28 chars in all."""
    return ("CNI-DN-" + hashlib.sha512((network + container_id).encode()).hexdigest())[:28]


def mappings(view: ClusterView, node: str) -> list[PortMapping]:
    """hostPort mappings of the pods on `node` (hostNetwork pods have none: FM-23)."""
    out = []
    for pod in view.pods_on(node):
        spec, status = pod.get("spec", {}), pod.get("status", {})
        if spec.get("hostNetwork") or not status.get("podIP"):
            continue
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("hostPort"):
                    out.append(PortMapping(_sandbox_id(pod), status["podIP"], int(p["hostPort"]),
                                           int(p["containerPort"]), (p.get("protocol") or "TCP").lower()))
    return out


def _sandbox_id(pod: dict[str, Any]) -> str:
    # The lab derives the sandbox id from the pod uid (spec.PodSpec.sandbox_id does the same).
    return hashlib.sha256(pod["metadata"]["uid"].encode()).hexdigest()


def ruleset(maps: list[PortMapping], pod_cidr_of: dict[str, str]) -> Ruleset:
    """nat rules for the given mappings; `pod_cidr_of` maps pod IP -> its interface network.

    The plugin marks hairpin traffic with `-s <container network>` (the pod's address with
    its /24 mask, which iptables prints as the network) and localhost traffic for masquerade.
    """
    rs = Ruleset()
    if not maps:
        return rs
    rs.declare("nat", "CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")
    rs.add("nat", "POSTROUTING", f"{comment('CNI portfwd requiring masquerade')} -j CNI-HOSTPORT-MASQ", -5)
    for chain in ("PREROUTING", "OUTPUT"):
        rs.add("nat", chain, "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT", 5)
    rs.add("nat", "CNI-HOSTPORT-MASQ", f"-m mark --mark {MARK} -j MASQUERADE")
    rs.add("nat", "CNI-HOSTPORT-SETMARK", f"{comment('CNI portfwd masquerade mark')} -j MARK --set-xmark {MARK}")
    by_sandbox: dict[str, list[PortMapping]] = {}
    for m in maps:
        by_sandbox.setdefault(m.sandbox_id, []).append(m)
    for sandbox, ms in sorted(by_sandbox.items()):
        chain = dn_chain(NETWORK, sandbox)
        note = comment(f'dnat name: "{NETWORK}" id: "{sandbox}"')
        for proto in sorted({m.protocol for m in ms}):
            ports = ",".join(str(m.host_port) for m in ms if m.protocol == proto)
            rs.add("nat", "CNI-HOSTPORT-DNAT", f"-p {proto} {note} -m multiport --dports {ports} -j {chain}")
        for m in ms:
            base = f"-p {m.protocol} -m {m.protocol} --dport {m.host_port}"
            rs.add("nat", chain, f"-s {pod_cidr_of[m.pod_ip]} {base} -j CNI-HOSTPORT-SETMARK")
            rs.add("nat", chain, f"-s 127.0.0.1/32 {base} -j CNI-HOSTPORT-SETMARK")
            rs.add("nat", chain, f"{base} -j DNAT --to-destination {m.pod_ip}:{m.container_port}")
    return rs


def owns(chain: str) -> bool:
    return chain.startswith("CNI-")
