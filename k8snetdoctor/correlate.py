"""Links findings as cause -> symptoms, so a report leads with what to fix first.

A rule declares which other rules its problems can explain (`Rule.explains`). A problem A
explains a problem B when B's rule is in A's list and their node scopes overlap (or A is
cluster-wide), or, for an `Explains` entry, when its test on the two findings holds. A problem
nothing explains is a root cause of its own.
"""
from __future__ import annotations

from typing import Callable, Iterable

from .model import Finding
from .rule import Explains, Rule


def _scope_nodes(f: Finding) -> set[str]:
    nodes = set(f.scope.nodes)
    for pair in f.scope.nodePairs:
        nodes.update(pair)
    return nodes


def _overlaps(cause: Finding, symptom: Finding) -> bool:
    c, s = _scope_nodes(cause), _scope_nodes(symptom)
    return not c or not s or bool(c & s)


def _matchers(rules: Iterable[Rule]) -> dict[str, dict[str, Callable[[Finding, Finding], bool]]]:
    """cause rule id -> symptom rule id -> test."""
    out: dict[str, dict[str, Callable[[Finding, Finding], bool]]] = {}
    for r in rules:
        for e in r.explains:
            if isinstance(e, Explains):
                out.setdefault(r.id, {})[e.rule_id] = e.when
            else:
                out.setdefault(r.id, {})[e] = _overlaps
    return out


def correlate(findings: list[Finding], rules: Iterable[Rule]) -> list[Finding]:
    matchers = _matchers(rules)
    problems = [f for f in findings if f.problem]
    for cause in problems:
        tests = matchers.get(cause.id)
        if not tests:
            continue
        for symptom in problems:
            test = tests.get(symptom.id)
            if symptom is cause or test is None:
                continue
            if test(cause, symptom):
                if symptom.key not in cause.explains:
                    cause.explains.append(symptom.key)
                if cause.key not in symptom.causedBy:
                    symptom.causedBy.append(cause.key)
    for f in findings:
        f.rootCause = f.problem and f.status != "error" and not f.causedBy
    return findings
