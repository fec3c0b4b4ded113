"""Builders for evidence and cluster fixtures, so unit tests state only what matters to them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Evidence, EvidenceBundle, Finding
from k8snetdoctor.rule import EvidenceSet, Rule

FIXTURES = Path(__file__).parent / "fixtures"
KP126 = FIXTURES / "kube-proxy-1.26"


def ev(kind: str, node: str | None, data: Any = None, *, error: str | None = None,
       source: str = "", excerpt: str = "", vantage: str = "node") -> Evidence:
    return Evidence(kind=kind, node=node, vantage=vantage, source=source or kind, data=data,
                    excerpt=excerpt, error=error)


def evset(*items: Evidence | Iterable[Evidence]) -> EvidenceSet:
    flat: list[Evidence] = []
    for i in items:
        flat.extend([i] if isinstance(i, Evidence) else list(i))
    return EvidenceSet(flat)


def kp_view(*extra: dict) -> ClusterView:
    """The kube-proxy 1.26 capture's cluster: nodes.json + fx-objects.json (+ extra objects)."""
    objs = [json.loads((KP126 / "nodes.json").read_text()), json.loads((KP126 / "fx-objects.json").read_text())]
    return ClusterView.from_objects(objs + list(extra), source="fixture")


def iptables_ev(node: str, path: Path | str, backend: str = "nft") -> Evidence:
    """iptables-save evidence from a dump file (a Path) or from dump text (a str)."""
    text = path.read_text() if isinstance(path, Path) else path
    kube = sum(1 for line in text.splitlines() if line.startswith("-A KUBE-"))
    return ev("iptables-save", node, {"backend": backend, "text": text, "kubeRules": kube},
              source=f"iptables-{backend}-save", excerpt=text[:2000])


def judge(rule: Rule, view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    """Run one rule through the engine (so skip/error policy applies as in production)."""
    from k8snetdoctor.engine import judge_rule

    return judge_rule(rule, view, evidence)


def statuses(findings: Iterable[Finding]) -> dict[str, str]:
    return {f.key: f.status for f in findings}


def bundle(*items: Evidence, cluster: ClusterView | None = None) -> EvidenceBundle:
    return EvidenceBundle(evidence=list(items), cluster=cluster.to_dict() if cluster else None)
