"""What a rule is, and the read-only view of evidence a rule judges.

A rule module in `checks/` declares its rules as `Rule(...)` constants at the top (the part a
reader scans: id, title, severity, failure modes, remediation) and binds one pure judge function
to each with `@RULE.judge`. Judges get `(view, evidence)` and return findings; they never do I/O,
so saved evidence can be re-judged anywhere and every rule is unit-testable on fixtures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .model import Evidence, EvidenceRef, Finding, Remediation, Scope, Severity, Status

if TYPE_CHECKING:  # pragma: no cover
    from .cluster.view import ClusterView

JudgeFn = Callable[["ClusterView | None", "EvidenceSet"], list[Finding]]

CLUSTER = "cluster"  # pseudo evidence kind: the rule needs the ClusterView
INVENTORY_ID = "cluster/inventory"  # the evidence id findings cite for facts read from the ClusterView


def inventory_ref(excerpt: str) -> EvidenceRef:
    """Cite a fact of the cluster inventory (a node's podCIDR, a pod's hostPort) as evidence.

    The engine adds one `inventory` evidence item to every report judged with a ClusterView,
    so these references always resolve.
    """
    return EvidenceRef(evidenceId=INVENTORY_ID, excerpt=excerpt, node=None, source="cluster inventory")


class EvidenceSet:
    """Evidence indexed by kind and node; what judges read instead of raw lists."""

    def __init__(self, items: Iterable[Evidence]):
        self.items: list[Evidence] = list(items)
        self._by_kind: dict[str, list[Evidence]] = {}
        self._by_kind_node: dict[tuple[str, str | None], list[Evidence]] = {}
        for e in self.items:  # indexed: judges ask per node, and clusters have hundreds
            self._by_kind.setdefault(e.kind, []).append(e)
            self._by_kind_node.setdefault((e.kind, e.node), []).append(e)

    def all(self, kind: str, node: str | None = None, vantage: str | None = None) -> list[Evidence]:
        found = self._by_kind.get(kind, []) if node is None else self._by_kind_node.get((kind, node), [])
        return [e for e in found if vantage is None or e.vantage == vantage]

    def get(self, kind: str, node: str | None = None, vantage: str | None = "node") -> Evidence | None:
        """The usable item of `kind` for `node`, else the failed one (so its error can be shown)."""
        found = self.all(kind, node, vantage)
        for e in found:
            if e.ok:
                return e
        return found[0] if found else None

    def nodes(self) -> list[str]:
        return sorted({e.node for e in self.items if e.node and e.vantage == "node"})

    def kinds(self) -> set[str]:
        return {e.kind for e in self.items}

    def missing_reason(self, kind: str) -> str | None:
        """Why no usable evidence of `kind` exists, or None when some does."""
        found = self.all(kind)
        if any(e.ok for e in found):
            return None
        if not found:
            return f"no {kind!r} evidence was collected"
        errors = sorted({f"{e.node or 'cluster'}: {e.error}" for e in found})
        return f"{kind!r} evidence could not be collected ({'; '.join(errors)})"


@dataclass(frozen=True)
class Explains:
    """`cause explains symptom` for findings of rule `rule_id`, decided by `when(cause, symptom)`.

    Needed where node overlap is too coarse: VXLAN dropped between A and B explains a NodePort
    failing on A only when the endpoint sits on B.
    """

    rule_id: str
    when: Callable[[Finding, Finding], bool]


@dataclass
class Rule:
    """A rule's declaration. `check` is the concern (the module), taken from the id prefix."""

    id: str
    title: str
    description: str
    severity: Severity
    needs: tuple[str, ...] = ()
    # Evidence kinds collected when available but whose absence does not skip the rule.
    wants: tuple[str, ...] = ()
    failureModes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    remediation: Remediation = field(default_factory=Remediation)
    # Rules whose problems this rule's problem explains: a rule id (when their node scopes
    # overlap) or an Explains with its own test on the two findings.
    explains: tuple["str | Explains", ...] = ()
    judge_fn: JudgeFn | None = None

    @property
    def check(self) -> str:
        return self.id.split(".", 1)[0]

    def judge(self, fn: JudgeFn) -> JudgeFn:
        """Decorator: bind the pure function that judges this rule."""
        self.judge_fn = fn
        return fn

    # -- finding constructors: keep every judge's output uniform -------------------------------
    def finding(self, status: Status, message: str, *, nodes: Sequence[str] = (),
                pairs: Sequence[Sequence[str]] = (), services: Sequence[str] = (),
                evidence: Iterable[EvidenceRef | Evidence] = (), values: dict[str, Any] | None = None,
                severity: Severity | None = None, remediation: Remediation | None = None,
                failure_modes: Iterable[str] | None = None, details: dict[str, Any] | None = None) -> Finding:
        """`failure_modes` narrows the FM ids to those this finding actually recognised."""
        refs = [e if isinstance(e, EvidenceRef) else EvidenceRef.to(e) for e in evidence]
        rem = None
        if status in ("fail", "warn"):
            rem = (remediation or self.remediation).render(**(values or {}))
        return Finding(
            id=self.id, check=self.check, title=self.title, status=status,
            severity=severity or (self.severity if status in ("fail", "warn", "error") else "info"),
            message=message,
            scope=Scope(nodes=list(nodes), nodePairs=[list(p) for p in pairs], services=list(services)),
            evidence=refs, remediation=rem, references=list(self.references),
            failureModes=sorted(failure_modes) if failure_modes is not None else list(self.failureModes),
            details=dict(details or {}),
        )

    def fail(self, message: str, **kw: Any) -> Finding:
        return self.finding("fail", message, **kw)

    def warn(self, message: str, **kw: Any) -> Finding:
        return self.finding("warn", message, **kw)

    def ok(self, message: str, **kw: Any) -> Finding:
        return self.finding("pass", message, **kw)

    def skip(self, reason: str, **kw: Any) -> Finding:
        return self.finding("skip", reason, **kw)

    def error(self, message: str, **kw: Any) -> Finding:
        return self.finding("error", message, **kw)
