"""The reading order every human-facing format shares: causes, their symptoms, the rest.

Kept apart from the renderers so the table and the markdown tell the same story: a finding
shown under a root cause is not repeated among "other problems", and a chain of causes
(A explains B explains C) nests instead of flattening.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from k8snetdoctor.model import PLATFORMS, Finding, Remediation, Report


@dataclass
class Node:
    """A finding with the symptoms it explains, nested as deep as the correlation goes."""

    finding: Finding
    symptoms: list["Node"] = field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Finding]]:
        yield depth, self.finding
        for s in self.symptoms:
            yield from s.walk(depth + 1)


@dataclass
class Outline:
    root_causes: list[Node]
    other_problems: list[Finding]
    passes: list[Finding]
    skips: list[Finding]


def outline(report: Report) -> Outline:
    """Split the findings, in the report's own order (the engine already sorted them for reading)."""
    by_key = report.by_key()
    shown: set[str] = set()

    def tree(f: Finding, path: frozenset[str]) -> Node:
        # A symptom two causes explain appears under both; `path` only stops cycles.
        shown.add(f.key)
        node = Node(f)
        for key in f.explains:
            symptom = by_key.get(key)
            if symptom is not None and symptom.problem and symptom.key not in path:
                node.symptoms.append(tree(symptom, path | {f.key}))
        return node

    roots = [tree(f, frozenset({f.key})) for f in report.root_causes()]
    others = [f for f in report.findings if f.problem and f.key not in shown]
    return Outline(
        root_causes=roots,
        other_problems=others,
        passes=[f for f in report.findings if f.status == "pass"],
        skips=[f for f in report.findings if f.status == "skip"],
    )


def summary_line(report: Report) -> str:
    s = report.summary()
    return f"{s['fail']} fail, {s['warn']} warn, {s['pass']} pass, {s['skip']} skip, {s['error']} error"


def check_platform(platform: str | None) -> None:
    if platform is not None and platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r} (choose from {', '.join(PLATFORMS)})")


def commands_for(rem: Remediation | None, platform: str | None) -> tuple[str | None, list[str]]:
    """The commands to show when only one platform fits on screen.

    The chosen platform's commands when the rule has them, else the generic ones, else the
    first platform the rule knows: a person always sees something runnable, labelled with
    where it applies.
    """
    if rem is None or not rem.commands:
        return None, []
    for p in (platform, "generic", *PLATFORMS, *rem.commands):
        if p and rem.commands.get(p):
            return p, list(rem.commands[p])
    return None, []


def platforms_in_order(rem: Remediation | None) -> list[str]:
    if rem is None:
        return []
    known = [p for p in PLATFORMS if rem.commands.get(p)]
    return known + sorted(p for p in rem.commands if p not in PLATFORMS and rem.commands[p])


def scope_text(f: Finding) -> str:
    parts = []
    if f.scope.nodes:
        parts.append(("node " if len(f.scope.nodes) == 1 else "nodes ") + ", ".join(f.scope.nodes))
    if f.scope.nodePairs:
        parts.append(", ".join(f"{a} -> {b}" for a, b in f.scope.nodePairs))
    if f.scope.services:
        parts.append(("service " if len(f.scope.services) == 1 else "services ") + ", ".join(f.scope.services))
    return "; ".join(parts) or "cluster"
