"""The kubelet port (10250) as the control plane and the internet see it, from active SYN tests.

The API server dials kubelets for logs, exec and port-forward, metrics-server for metrics:
10250 must be open from the control plane and the pod network (FM-34, FM-36). From outside
the cluster it must not be (FM-39): with anonymous auth it is remote code execution.
"""
from __future__ import annotations

from k8snetdoctor.model import Finding, Remediation
from k8snetdoctor.rule import EvidenceSet, Explains, Rule

from ._active import entries, failed, judged, refs, vantage_kind


def _explains_pod_to_kubelet(cause: Finding, symptom: Finding) -> bool:
    """Pods failing to reach node X only on the kubelet port: the same closed port, seen from a pod."""
    d = symptom.details
    return d.get("to") in cause.scope.nodes and bool(d.get("ports")) and set(d["ports"]) <= {cause.details.get("port")}


UNREACHABLE = Rule(
    id="kubelet.unreachable",
    title="The control plane reaches every kubelet on 10250",
    description=(
        "kubectl logs/exec/port-forward and metrics-server go to the kubelet's port 10250. A "
        "security group or host firewall that drops it from the control plane makes them time out "
        "for that node only (FM-36); from the pod network, metrics are missing (FM-34)."
    ),
    severity="high",
    needs=("conn",),
    failureModes=("FM-34", "FM-36"),
    references=("https://kubernetes.io/docs/reference/networking/ports-and-protocols/",
                "https://github.com/kubernetes-sigs/metrics-server/blob/master/KNOWN_ISSUES.md"),
    remediation=Remediation(
        summary="Open TCP {port} on {node} to the control plane and the pod network.",
        commands={
            "generic": ["iptables -I INPUT -p tcp --dport {port} -s <control-plane-ip> -j ACCEPT   # on {node}",
                        "iptables -I INPUT -p tcp --dport {port} -s <pod-cidr> -j ACCEPT   # on {node}"],
            "ufw": ["ufw allow from <control-plane-ip> to any port {port} proto tcp   # on {node}"],
            "firewalld": ["firewall-cmd --permanent --add-port={port}/tcp && firewall-cmd --reload   # on {node}"],
            "aws": ["aws ec2 authorize-security-group-ingress --group-id <sg-of-{node}> --protocol tcp --port {port} "
                    "--source-group <sg-of-control-plane>"],
            "k3s": ["iptables -I INPUT -p tcp --dport {port} -s <server-ip> -j ACCEPT   # on {node}; "
                    "k3s agents need 10250 from servers"],
        },
    ),
    explains=(Explains("crossnode.pod-node", _explains_pod_to_kubelet),),
)

EXPOSED = Rule(
    id="kubelet.exposed",
    title="No kubelet answers on 10250 from outside the cluster",
    description=(
        "A kubelet reachable from the internet is attacked within hours: with anonymous auth "
        "enabled (the default of older installers) anyone can list pods and exec into them (FM-39)."
    ),
    severity="critical",
    needs=("conn",),
    failureModes=("FM-39",),
    references=("https://kubernetes.io/docs/reference/access-authn-authz/kubelet-authn-authz/",),
    remediation=Remediation(
        summary="Close TCP {port} on {node} to everything but the control plane, and turn anonymous auth off.",
        commands={
            "generic": [
                "iptables -I INPUT -p tcp --dport {port} ! -s <cluster-cidr> -j DROP   # on {node}",
                "grep -A3 -n anonymous /var/lib/kubelet/config.yaml   # enabled: false, authorization mode: Webhook",
                "systemctl restart kubelet",
            ],
            "ufw": ["ufw deny {port}/tcp && ufw allow from <control-plane-ip> to any port {port} proto tcp"],
            "firewalld": ["firewall-cmd --permanent --remove-port={port}/tcp && firewall-cmd --reload"],
            "aws": ["aws ec2 revoke-security-group-ingress --group-id <sg-of-{node}> --protocol tcp --port {port} "
                    "--cidr 0.0.0.0/0"],
            "k3s": ["echo 'kubelet-arg: [\"anonymous-auth=false\"]' >> /etc/rancher/k3s/config.yaml; "
                    "systemctl restart k3s-agent   # and close {port} in the firewall"],
        },
    ),
)


def _kubelet_entries(evidence: EvidenceSet, vantage: str) -> dict[str, list]:
    groups: dict[str, list] = {}
    for ev, e in entries(evidence, "conn", ("kubelet",)):
        if vantage_kind(e) == vantage and e.get("toNode") and judged(e):
            groups.setdefault(e["toNode"], []).append((ev, e))
    return groups


@UNREACHABLE.judge
def judge_unreachable(view, evidence: EvidenceSet) -> list[Finding]:
    out = []
    for node, seen in sorted(_kubelet_entries(evidence, "node").items()):
        port = seen[0][1].get("port")
        bad = [(ev, e) for ev, e in seen if failed(e) and e.get("expect") == "reachable"]
        if not bad:
            out.append(UNREACHABLE.ok(f"{node}: kubelet port {port} open from the control plane", nodes=[node],
                                      evidence=refs(seen), details={"node": node, "port": port}))
            continue
        sources = sorted({str(e.get("from")) for _, e in bad})
        out.append(UNREACHABLE.fail(
            f"{node}: kubelet port {port} is {bad[0][1].get('result')} from {', '.join(sources)}: logs, exec and "
            "metrics for this node fail", nodes=[node], evidence=refs(bad), values={"node": node, "port": port},
            details={"node": node, "port": port, "from": sources}))
    return out


@EXPOSED.judge
def judge_exposed(view, evidence: EvidenceSet) -> list[Finding]:
    out = []
    for node, seen in sorted(_kubelet_entries(evidence, "external").items()):
        port = seen[0][1].get("port")
        bad = [(ev, e) for ev, e in seen if failed(e) and e.get("expect") == "unreachable"]
        if not bad:
            out.append(EXPOSED.ok(f"{node}: kubelet port {port} not reachable from outside "
                                  f"({seen[0][1].get('result')})", nodes=[node], evidence=refs(seen),
                                  details={"node": node, "port": port}))
            continue
        out.append(EXPOSED.fail(f"{node}: kubelet port {port} is {bad[0][1].get('result')} from outside the "
                                "cluster: anyone on the internet can talk to this kubelet", nodes=[node],
                                evidence=refs(bad), values={"node": node, "port": port},
                                details={"node": node, "port": port, "layer": "exposure"}))
    return out
