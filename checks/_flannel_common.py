"""What the flannel rule modules share: the gate, node listing, evidence excerpts, restart commands.

Shared by checks/flannel.py and checks/flannel_peers.py so every flannel rule skips, cites and
restarts flanneld the same way. No rules here: the registry skips modules whose name starts with "_".
"""
from __future__ import annotations

from k8snetdoctor import flannel_facts as ff
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Evidence, EvidenceRef, Finding
from k8snetdoctor.rule import EvidenceSet, Rule

TROUBLESHOOTING = "https://github.com/flannel-io/flannel/blob/master/Documentation/troubleshooting.md"
RESTART_FLANNEL = "kubectl -n kube-flannel delete pod -l app=flannel --field-selector spec.nodeName={node}   # kube-system in older manifests"
RESTART_K3S = "systemctl restart k3s-agent   # on {node}; k3s on servers (flannel is embedded in k3s)"


def gate(rule: Rule, view: ClusterView | None, evidence: EvidenceSet, vxlan: bool = True) -> Finding | None:
    det = ff.detect(view, evidence)
    return None if (det.vxlan if vxlan else det.flannel) else rule.skip(det.reason)


def nodes_with(view: ClusterView | None, evidence: EvidenceSet, kind: str) -> list[str]:
    return sorted(set(view.node_names() if view else []) | {e.node for e in evidence.all(kind) if e.node})


def narrow(f: Finding, fms: set[str]) -> Finding:
    """A finding cites the failure modes it actually recognised, not every one its rule knows."""
    f.failureModes = sorted(fms)
    return f


def ref(ev: Evidence, lines: list[str]) -> EvidenceRef:
    return EvidenceRef.to(ev, "\n".join(lines))
