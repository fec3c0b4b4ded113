"""NodePorts and hostPorts as clients see them: active HTTP tests to each node's address.

The config rules (nodeport.rules, hostport.portmap) say whether the NAT rules exist; these say
whether a connection gets through, from the other nodes and from outside. A failure here with
a config finding on the same node is that finding's symptom; one whose Service's endpoints sit
across a broken overlay pair is the overlay's; a failure nothing explains (a security group
closing the port, a middlebox) is a root cause of its own. Tests the planner expects to drop
(externalTrafficPolicy: Local on a node without an endpoint) are by design and never fail here.
"""
from __future__ import annotations

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Finding, Remediation
from k8snetdoctor.rule import CLUSTER, EvidenceSet, Rule

from ._active import entries, failed, joined, judged, refs

NODEPORT_REACHABLE = Rule(
    id="nodeport.reachable",
    title="NodePorts answer on every node, from the nodes and from outside",
    description=(
        "A NodePort must answer on every node's address, whichever node the endpoint runs on: "
        "the receiving node DNATs and forwards across the overlay. Failing on one node only points "
        "at that node (kube-proxy rules, a security group closing the port); failing on nodes "
        "without an endpoint points at the overlay between them and the endpoints' nodes (FM-13)."
    ),
    severity="high",
    needs=(CLUSTER, "conn"),
    failureModes=("FM-13", "FM-18", "FM-01"),
    references=("https://kubernetes.io/docs/concepts/services-networking/service/#type-nodeport",),
    remediation=Remediation(
        summary="Open the NodePort range to {node} for the clients that need it, and check kube-proxy there.",
        commands={
            "generic": [
                "iptables -t nat -S KUBE-NODEPORTS | head   # on {node}: the NodePort rules must exist",
                "iptables -S INPUT; iptables -S FORWARD   # on {node}: nothing may drop tcp/30000:32767",
            ],
            "ufw": ["ufw allow 30000:32767/tcp   # on {node}"],
            "firewalld": ["firewall-cmd --permanent --add-port=30000-32767/tcp && firewall-cmd --reload   # on {node}"],
            "aws": ["aws ec2 authorize-security-group-ingress --group-id <sg-of-{node}> --protocol tcp "
                    "--port 30000-32767 --cidr <client-cidr>"],
            "k3s": ["iptables -t nat -S KUBE-NODEPORTS | head   # on {node}; if empty: systemctl restart k3s-agent"],
        },
    ),
)

HOSTPORT_REACHABLE = Rule(
    id="hostport.reachable",
    title="hostPorts answer on their node's address",
    description=(
        "A hostPort exists only as portmap's DNAT on the pod's node. Refused there means the DNAT "
        "is missing (FM-22, see hostport.portmap); a timeout means something drops it on the way."
    ),
    severity="high",
    needs=("conn",),
    failureModes=("FM-22",),
    references=("https://www.cni.dev/plugins/current/meta/portmap/",),
    remediation=Remediation(
        summary="Make portmap map the hostPort on {node} again, and let the port through its firewall.",
        commands={
            "generic": [
                "iptables -t nat -S CNI-HOSTPORT-DNAT   # on {node}: the pod's CNI-DN-* chain must be there",
                "grep -n portmap /etc/cni/net.d/*.conflist   # on {node}",
            ],
            "ufw": ["ufw allow <hostPort>/tcp   # on {node}"],
            "firewalld": ["firewall-cmd --permanent --add-port=<hostPort>/tcp && firewall-cmd --reload   # on {node}"],
            "aws": ["aws ec2 authorize-security-group-ingress --group-id <sg-of-{node}> --protocol tcp "
                    "--port <hostPort> --cidr <client-cidr>"],
            "k3s": ["ls /var/lib/rancher/k3s/data/current/bin/portmap   # on {node}: k3s ships portmap there"],
        },
    ),
)


def endpoint_nodes(view: ClusterView | None) -> dict[str, list[str]]:
    """service port ref (`ns/svc:port`) -> nodes of its ready endpoints."""
    if view is None:
        return {}
    return {sp.ref: sorted({e.node for e in view.endpoints(sp) if e.ready and e.node}) for sp in view.service_ports()
            if sp.node_port}


def _by_target(evidence: EvidenceSet, category: str) -> dict[str, list]:
    groups: dict[str, list] = {}
    for ev, e in entries(evidence, "conn", (category,)):
        if e.get("toNode") and judged(e) and e.get("expect") == "reachable":
            groups.setdefault(e["toNode"], []).append((ev, e))
    return groups


@NODEPORT_REACHABLE.judge
def judge_nodeport(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    eps = endpoint_nodes(view)
    out = []
    for node, seen in sorted(_by_target(evidence, "nodeport").items()):
        bad = [(ev, e) for ev, e in seen if failed(e)]
        if not bad:
            out.append(NODEPORT_REACHABLE.ok(f"{node}: {len(seen)} NodePort test(s) answered", nodes=[node],
                                             evidence=refs(seen), details={"node": node}))
            continue
        services = sorted({str(e.get("to", "")).rsplit("@", 1)[0] for _, e in bad})
        ep_nodes = sorted({n for s in services for n in eps.get(s, [])})
        sources = sorted({str(e.get("from")) for _, e in bad})
        words = "; ".join(f"{e.get('from')} -> {e.get('to')}: {e.get('result')}" for _, e in bad[:4])
        where = f"endpoints on {joined(ep_nodes)}" if ep_nodes else "no endpoint node known"
        out.append(NODEPORT_REACHABLE.fail(
            f"{node}: NodePort(s) of {', '.join(services)} fail from {', '.join(sources)} ({where}): {words}",
            nodes=[node], services=[s.split(":", 1)[0] for s in services], evidence=refs(bad), values={"node": node},
            details={"node": node, "from": sources, "endpointNodes": ep_nodes, "services": services}))
    return out


@HOSTPORT_REACHABLE.judge
def judge_hostport(view, evidence: EvidenceSet) -> list[Finding]:
    out = []
    for node, seen in sorted(_by_target(evidence, "hostport").items()):
        bad = [(ev, e) for ev, e in seen if failed(e)]
        if not bad:
            out.append(HOSTPORT_REACHABLE.ok(f"{node}: {len(seen)} hostPort test(s) answered", nodes=[node],
                                             evidence=refs(seen), details={"node": node}))
            continue
        sources = sorted({str(e.get("from")) for _, e in bad})
        words = "; ".join(f"{e.get('from')} -> {e.get('to')}:{e.get('port')}: {e.get('result')}" for _, e in bad[:4])
        out.append(HOSTPORT_REACHABLE.fail(f"{node}: hostPort fails from {', '.join(sources)}: {words}", nodes=[node],
                                           evidence=refs(bad), values={"node": node},
                                           details={"node": node, "from": sources}))
    return out
