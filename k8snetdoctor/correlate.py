"""Links findings as cause -> symptoms, so a report leads with what to fix first.

A rule declares which other rules its problems can explain (`Rule.explains`). A problem A
explains a problem B when B's rule is in A's list and their node scopes overlap (or A is
cluster-wide). A problem nothing explains is a root cause of its own.
"""
from __future__ import annotations

from typing import Iterable

from .model import Finding
from .rule import Rule


def _scope_nodes(f: Finding) -> set[str]:
    nodes = set(f.scope.nodes)
    for pair in f.scope.nodePairs:
        nodes.update(pair)
    return nodes


def _overlaps(cause: Finding, symptom: Finding) -> bool:
    c, s = _scope_nodes(cause), _scope_nodes(symptom)
    return not c or not s or bool(c & s)


def correlate(findings: list[Finding], rules: Iterable[Rule]) -> list[Finding]:
    explains = {r.id: set(r.explains) for r in rules}
    problems = [f for f in findings if f.problem]
    for cause in problems:
        for symptom in problems:
            if symptom is cause or symptom.id not in explains.get(cause.id, ()):
                continue
            if _overlaps(cause, symptom):
                if symptom.key not in cause.explains:
                    cause.explains.append(symptom.key)
                if cause.key not in symptom.causedBy:
                    symptom.causedBy.append(cause.key)
    for f in findings:
        f.rootCause = f.problem and f.status != "error" and not f.causedBy
    return findings
