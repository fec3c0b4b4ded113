"""plan -> collect -> judge -> correlate -> report.

The engine owns the order and the failure policy: a rule that raises becomes an `error`
finding, a rule whose evidence is absent becomes `skip` with the reason, and neither stops
the other rules. Collection is passed in as a function, so the same engine serves saved
bundles (`analyze`), the local host, the lab and, later, cluster transports.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable

from . import __version__
from .cluster.view import ClusterView
from .correlate import correlate
from .model import Evidence, EvidenceBundle, Finding, Report
from .rule import CLUSTER, INVENTORY_ID, EvidenceSet, Rule


@dataclass(frozen=True)
class Plan:
    """Which rules run and which evidence kinds they need, so collectors gather only that."""

    rules: tuple[Rule, ...]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(k for r in self.rules for k in (*r.needs, *r.wants) if k != CLUSTER)

    @property
    def needs_cluster(self) -> bool:
        return any(CLUSTER in r.needs for r in self.rules)


def plan(rules: list[Rule] | tuple[Rule, ...]) -> Plan:
    return Plan(tuple(rules))


def _skip_reason(rule: Rule, view: ClusterView | None, evidence: EvidenceSet) -> str | None:
    for kind in rule.needs:
        if kind == CLUSTER:
            if view is None:
                return "no cluster inventory (run against a cluster, or pass --cluster to analyze)"
            continue
        reason = evidence.missing_reason(kind)
        if reason:
            return reason
    return None


def judge_rule(rule: Rule, view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    reason = _skip_reason(rule, view, evidence)
    if reason:
        return [rule.skip(reason)]
    assert rule.judge_fn is not None
    try:
        found = rule.judge_fn(view, evidence)
    except Exception as exc:  # a broken rule must not hide the others' verdicts
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}"
        return [rule.error(f"rule raised {type(exc).__name__}: {exc} (at {where})")]
    if not found:
        return [rule.skip("nothing to judge: no object in scope for this rule")]
    return [_unsupported(rule, f) or f for f in found]


def _unsupported(rule: Rule, f: Finding) -> Finding | None:
    """A failing verdict without its evidence or its fix is a rule bug: surface it as one."""
    if f.status != "fail":
        return None
    missing = [what for what, ok in (("evidence", f.evidence),
                                     ("remediation commands", f.remediation and f.remediation.commands)) if not ok]
    if not missing:
        return None
    return rule.error(f"rule bug: failing finding {f.key} carries no {' and no '.join(missing)}: {f.message}",
                      nodes=f.scope.nodes, pairs=f.scope.nodePairs, services=f.scope.services)


def judge(rules: list[Rule] | tuple[Rule, ...], view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules:
        findings.extend(judge_rule(rule, view, evidence))
    return correlate(findings, rules)


def analyze(bundle: EvidenceBundle, rules: list[Rule] | tuple[Rule, ...],
            view: ClusterView | None = None, target: dict | None = None) -> Report:
    """Judge a bundle already collected: the offline half of the engine."""
    if view is None and bundle.cluster:
        view = ClusterView.from_dict(bundle.cluster)
    items = list(bundle.evidence)
    if view is not None:
        items.append(inventory_evidence(view))
    evidence = EvidenceSet(items)
    findings = judge(rules, view, evidence)
    return Report(findings=sort_findings(findings), evidence=items,
                  tool={"name": "netdoctor", "version": __version__},
                  target=target or {"nodes": evidence.nodes(), "cluster": view is not None})


def inventory_evidence(view: ClusterView) -> Evidence:
    """The cluster inventory as one evidence item, so findings can cite API facts."""
    counts = {k: len(v) for k, v in view.to_dict().items() if isinstance(v, list)}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return Evidence(kind="inventory", node=None, vantage="cluster", source=f"cluster inventory ({view.source})",
                    data=counts, excerpt=summary or "empty inventory", id=INVENTORY_ID)


def run(rules: list[Rule] | tuple[Rule, ...], collect: Callable[[Plan], EvidenceBundle],
        view: ClusterView | None = None, target: dict | None = None) -> Report:
    """The whole pipeline with a collector supplied by the caller (local host, lab, transport)."""
    p = plan(rules)
    bundle = collect(p)
    return analyze(bundle, p.rules, view, target)


_STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "skip": 3, "pass": 4}
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Root causes first, then by status and severity: the order a person should read them."""
    return sorted(findings, key=lambda f: (not f.rootCause, _STATUS_ORDER[f.status],
                                           _SEVERITY_ORDER[f.severity], f.id, f.key))
