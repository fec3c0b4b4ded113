"""Pod network reachability between nodes, judged from active `conn` tests.

These are symptoms more often than causes: a pod on A that cannot reach a pod on B is what a
user sees, while the reason is the overlay between A and B (vxlan.udp-blocked), forwarding
off on one of them (sysctl.ip-forward) or a node without a podCIDR. One finding per (from
node, to node) and kind of path, with the facts correlation matches on in `details`, so the
cause's rule can claim exactly these symptoms; what nothing explains stays a root cause.
"""
from __future__ import annotations

from k8snetdoctor.model import Finding, Remediation
from k8snetdoctor.rule import EvidenceSet, Explains, Rule

from ._active import entries, failed, judged, refs, vantage_kind, vantage_node

_FIX = Remediation(
    summary="Find what drops pod traffic from {src} to {dst}: the overlay, forwarding, or a firewall's FORWARD chain.",
    commands={
        "generic": [
            "netdoctor check vxlan sysctl flannel   # the usual causes, judged for this pair",
            "ip -d link show flannel.1; bridge fdb show dev flannel.1; ip neigh show dev flannel.1   # on {src}",
            "sysctl net.ipv4.ip_forward   # on {src} and {dst}: must be 1",
            "iptables -S FORWARD | head -20   # on {src} and {dst}: a DROP policy needs ACCEPT rules for the pod CIDR",
        ],
        "ufw": ["ufw default allow routed   # ufw's routed policy drops forwarded pod traffic by default"],
        "firewalld": ["firewall-cmd --permanent --zone=trusted --add-source=<pod-cidr> && firewall-cmd --reload"],
        "aws": ["aws ec2 describe-security-groups --group-ids <sg-of-nodes>   # UDP 8472 between nodes; "
                "and disable source/dest check if routing pod CIDRs natively"],
        "k3s": ["journalctl -u k3s -u k3s-agent | grep -i flannel | tail -20   # on {src} and {dst}"],
    },
)


def _to_coredns(cause: Finding, symptom: Finding) -> bool:
    """Pods of node X cannot reach pods on Y: X's DNS fails when the CoreDNS pods it misses are on Y."""
    d, c = symptom.details, cause.details
    return c.get("from") == d.get("node") and c.get("to") in (d.get("corednsNodes") or ()) and c["from"] != c["to"]


def _to_endpoints(cause: Finding, symptom: Finding) -> bool:
    """Node X cannot reach pods on Y: X's NodePort fails when the Service's endpoints run on Y."""
    d, c = symptom.details, cause.details
    return c.get("from") == d.get("node") and c.get("to") in (d.get("endpointNodes") or ()) and c["from"] != c["to"]


def _rule(kind: str, title: str, what: str, explains: tuple = ()) -> Rule:
    return Rule(
        id=f"crossnode.{kind}",
        title=title,
        description=(
            f"{what} Tests run from every node (or its pod) to every other node (full mesh up to 10 "
            "nodes, sampled above) and to its own node as a baseline. A failing pair is usually the "
            "overlay between the two nodes (FM-13 for NodePorts, FM-32 for DNS), forwarding off on "
            "one of them, or a firewall in their FORWARD path."
        ),
        severity="high",
        needs=("conn",),
        failureModes=("FM-13", "FM-32"),
        references=("https://kubernetes.io/docs/concepts/cluster-administration/networking/",),
        remediation=_FIX,
        explains=explains,
    )


POD_POD = _rule("pod-pod", "Pods reach pods on every node",
                "Kubernetes requires every pod to reach every other pod without NAT.",
                (Explains("dns.unreachable-from", _to_coredns),))
NODE_POD = _rule("node-pod", "Nodes reach pods on every node",
                 "Node agents (kubelet probes, hostNetwork pods, NodePort forwarding) reach pods on all nodes.",
                 (Explains("nodeport.reachable", _to_endpoints),))
POD_NODE = _rule("pod-node", "Pods reach every node's address",
                 "Pods reach node addresses: metrics-server to kubelets, pods to hostNetwork services.")


def _judge(rule: Rule, vantage: str, evidence: EvidenceSet) -> list[Finding]:
    category = rule.id.split(".", 1)[1]
    groups: dict[tuple[str, str], list] = {}
    for ev, e in entries(evidence, "conn", (category,)):
        src, dst = vantage_node(e), e.get("toNode")
        if src and dst and vantage_kind(e) == vantage and judged(e) and e.get("expect") == "reachable":
            groups.setdefault((src, dst), []).append((ev, e))
    out = []
    for (src, dst), seen in sorted(groups.items()):
        bad = [(ev, e) for ev, e in seen if failed(e)]
        where = f"{src} -> {dst}" if src != dst else f"{src} (same node)"
        base = {"from": src, "to": dst, "layer": "pod"}
        if not bad:
            out.append(rule.ok(f"{category} {where}: {len(seen)} test(s) as expected", pairs=[[src, dst]],
                               evidence=refs(seen), details=base))
            continue
        what = "; ".join(f"{e.get('to')} {e.get('method')} -> {e.get('result')}" for _, e in bad[:4])
        ports = sorted({e.get("port") or 0 for _, e in bad})
        out.append(rule.fail(f"{category} {where}: {len(bad)} of {len(seen)} test(s) failed ({what})",
                             pairs=[[src, dst]], evidence=refs(bad), values={"src": src, "dst": dst},
                             details={**base, "ports": ports, "methods": sorted({e.get("method") for _, e in bad})}))
    return out


@POD_POD.judge
def judge_pod_pod(view, evidence: EvidenceSet) -> list[Finding]:
    return _judge(POD_POD, "pod", evidence)


@NODE_POD.judge
def judge_node_pod(view, evidence: EvidenceSet) -> list[Finding]:
    return _judge(NODE_POD, "node", evidence)


@POD_NODE.judge
def judge_pod_node(view, evidence: EvidenceSet) -> list[Finding]:
    return _judge(POD_NODE, "pod", evidence)
