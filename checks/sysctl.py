"""Kernel switches every node of a pod network needs: forwarding and bridge netfilter."""
from __future__ import annotations

from k8snetdoctor.model import EvidenceRef, Finding, Remediation
from k8snetdoctor.rule import EvidenceSet, Rule

from ._active import NODE_DATAPLANE

IP_FORWARD = Rule(
    id="sysctl.ip-forward",
    title="IPv4 forwarding is enabled",
    description=(
        "Pods reach other nodes, Services and the internet only if the node forwards packets "
        "between cni0, the overlay and its uplink. With net.ipv4.ip_forward=0 every packet that "
        "is not addressed to the node itself is dropped; a network restart or a later sysctl.d "
        "file often resets it."
    ),
    severity="critical",
    needs=("sysctls",),
    failureModes=("FM-17",),
    references=(
        "https://kubernetes.io/docs/setup/production-environment/container-runtimes/#prerequisite-ipv4-forwarding-optional",
        "https://github.com/kubernetes-sigs/kubespray/issues/680",
    ),
    remediation=Remediation(
        summary="Enable IPv4 forwarding on {node} now and make it persistent.",
        commands={
            "generic": [
                "sysctl -w net.ipv4.ip_forward=1",
                "echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/99-kubernetes.conf",
                "sysctl --system   # then: grep -rn ip_forward /etc/sysctl.d /run/sysctl.d /usr/lib/sysctl.d (no later file may set 0)",
            ],
        },
    ),
    # every forwarded packet: pod paths in and out, NodePorts and hostPorts DNATed to pods, DNS
    explains=(*NODE_DATAPLANE, "hostport.reachable"),
)

BRIDGE_NF = Rule(
    id="sysctl.bridge-nf-call-iptables",
    title="Bridged pod traffic passes through iptables",
    description=(
        "Pods on one node share the cni0 bridge. Unless br_netfilter is loaded and "
        "net.bridge.bridge-nf-call-iptables=1, bridged frames skip iptables: a Service whose "
        "endpoint sits on the client's own node gets DNATed on the way out but not un-NATed on "
        "the way back, so the client drops the reply (classic symptom: DNS fails only when "
        "CoreDNS runs on the same node)."
    ),
    severity="high",
    needs=("sysctls",),
    failureModes=("FM-16",),
    references=(
        "https://kubernetes.io/docs/setup/production-environment/container-runtimes/#forwarding-ipv4-and-letting-iptables-see-bridged-traffic",
        "https://github.com/kubernetes/kubernetes/issues/38802",
    ),
    remediation=Remediation(
        summary="Load br_netfilter on {node} before setting the sysctl, and persist both.",
        commands={
            "generic": [
                "modprobe br_netfilter",
                "echo br_netfilter > /etc/modules-load.d/k8s.conf",
                "sysctl -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1",
                "printf 'net.bridge.bridge-nf-call-iptables = 1\\nnet.bridge.bridge-nf-call-ip6tables = 1\\n' > /etc/sysctl.d/k8s.conf",
            ],
            "kind": [
                "modprobe br_netfilter   # on the Docker host: kind nodes share its kernel",
                "sysctl -w net.bridge.bridge-nf-call-iptables=1",
            ],
            "k3s": [
                "modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/k8s.conf",
                "sysctl -w net.bridge.bridge-nf-call-iptables=1",
                "echo 'net.bridge.bridge-nf-call-iptables = 1' > /etc/sysctl.d/k8s.conf",
                "systemctl restart k3s   # k3s-agent on agents",
            ],
        },
    ),
)


def _sysctl_findings(rule: Rule, evidence: EvidenceSet, key: str, healthy: str, absent_msg: str) -> list[Finding]:
    out = []
    for node in evidence.nodes():
        ev = evidence.get("sysctls", node)
        if ev is None or not ev.ok:
            out.append(rule.skip(f"sysctls not collected on {node}" + (f": {ev.error}" if ev else ""), nodes=[node]))
            continue
        value = (ev.data or {}).get(key)
        line = f"{key} = {value if value is not None else '(absent)'}"
        if value is None:
            out.append(rule.fail(f"{node}: {absent_msg}", nodes=[node],
                                 evidence=[_ref(ev, line)], values={"node": node}))
        elif str(value).strip() != healthy:
            out.append(rule.fail(f"{node}: {key} is {value}, must be {healthy}", nodes=[node],
                                 evidence=[_ref(ev, line)], values={"node": node}))
        else:
            out.append(rule.ok(f"{node}: {key} = {healthy}", nodes=[node], evidence=[_ref(ev, line)]))
    return out


def _ref(ev, line: str) -> EvidenceRef:
    return EvidenceRef.to(ev, line)


@IP_FORWARD.judge
def judge_ip_forward(view, evidence: EvidenceSet) -> list[Finding]:
    return _sysctl_findings(IP_FORWARD, evidence, "net.ipv4.ip_forward", "1",
                            "net.ipv4.ip_forward could not be read")


@BRIDGE_NF.judge
def judge_bridge_nf(view, evidence: EvidenceSet) -> list[Finding]:
    return _sysctl_findings(BRIDGE_NF, evidence, "net.bridge.bridge-nf-call-iptables", "1",
                            "net.bridge.bridge-nf-call-iptables is absent: the br_netfilter module is not loaded")
