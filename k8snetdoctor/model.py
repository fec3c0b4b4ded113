"""The data that moves between collecting, judging and reporting.

Everything here is plain data with a lossless JSON round trip, because evidence is saved
by probes on one machine and judged later on another (`netdoctor analyze`), and because a
report is attached to tickets and must be readable without this tool.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

SCHEMA_VERSION = "1"

Status = Literal["pass", "warn", "fail", "skip", "error"]
Severity = Literal["critical", "high", "medium", "low", "info"]
Vantage = Literal["node", "pod", "external", "cluster", "runner"]

STATUSES: tuple[str, ...] = ("fail", "error", "warn", "skip", "pass")
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
# Platforms a remediation may give commands for, in the order reports show them.
PLATFORMS: tuple[str, ...] = ("generic", "ufw", "firewalld", "aws", "k3s", "kubeadm", "kind")

EXCERPT_LIMIT = 4000


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def clip(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """Keep excerpts short: a report is read by people, the full output stays in the bundle."""
    if len(text) <= limit:
        return text
    return text[: limit - 20] + f"\n… ({len(text) - limit + 20} more characters)"


@dataclass
class Evidence:
    """One observation with its provenance, so every finding can say where its facts came from.

    `data` holds the parsed, structured form rules judge; `excerpt` holds a slice of the raw
    output a person can read. `error` is set instead of `data` when collection could not run
    (binary missing, no permission): the rules that need it then skip with that reason.
    """

    kind: str
    node: str | None
    vantage: Vantage = "node"
    source: str = ""
    data: Any = None
    excerpt: str = ""
    error: str | None = None
    collectedAt: str = field(default_factory=utcnow)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = evidence_id(self.kind, self.node, self.vantage, self.source)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Evidence":
        return _known_fields(cls, d)


def evidence_id(kind: str, node: str | None, vantage: str, source: str) -> str:
    base = f"{node or '-'}/{vantage}/{kind}"
    digest = hashlib.sha1(source.encode()).hexdigest()[:6] if source else "0"
    return f"{base}#{digest}"


@dataclass
class EvidenceRef:
    """A pointer from a finding to the evidence it rests on, with the lines that matter."""

    evidenceId: str
    excerpt: str = ""
    node: str | None = None
    source: str = ""

    @classmethod
    def to(cls, ev: Evidence, excerpt: str | None = None) -> "EvidenceRef":
        return cls(evidenceId=ev.id, excerpt=clip(ev.excerpt if excerpt is None else excerpt),
                   node=ev.node, source=ev.source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvidenceRef":
        return _known_fields(cls, d)


@dataclass
class Remediation:
    """How to fix it: a summary and copy-paste commands per platform. Printed, never applied.

    Each platform's list is complete on its own (a reader of `--platform k3s` sees only that
    list); `generic` is what any Linux node needs and the fallback for unlisted platforms.
    """

    summary: str = ""
    commands: dict[str, list[str]] = field(default_factory=dict)

    def render(self, **values: Any) -> "Remediation":
        """Fill `{placeholders}` with the finding's facts; unknown ones are left visible."""
        fmt = _SafeFormat(values)
        return Remediation(
            summary=self.summary.format_map(fmt),
            commands={p: [c.format_map(fmt) for c in cmds] for p, cmds in self.commands.items()},
        )

    @classmethod
    def combine(cls, *parts: "Remediation", common: Iterable[str] = ()) -> "Remediation":
        """One fix made of several: each platform's list stays complete on its own, so a part
        silent about a platform contributes its generic commands there, and `common` lines go
        into every list."""
        common = list(common)
        platforms = [pl for pl in PLATFORMS if any(pl in p.commands for p in parts)] or ["generic"]
        cmds: dict[str, list[str]] = {pl: [] for pl in platforms}
        for pl in platforms:
            for line in [c for p in parts for c in p.commands.get(pl, p.commands.get("generic", []))] + common:
                if line not in cmds[pl]:
                    cmds[pl].append(line)
        return cls(summary=" ".join(p.summary for p in parts if p.summary), commands=cmds)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "commands": {p: list(c) for p, c in self.commands.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Remediation":
        return cls(summary=d.get("summary", ""), commands={k: list(v) for k, v in d.get("commands", {}).items()})


class _SafeFormat(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class Scope:
    nodes: list[str] = field(default_factory=list)
    nodePairs: list[list[str]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)

    def label(self) -> str:
        parts = list(self.nodes)
        parts += [f"{a}->{b}" for a, b in self.nodePairs]
        parts += self.services
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Scope":
        return cls(nodes=list(d.get("nodes", [])), nodePairs=[list(p) for p in d.get("nodePairs", [])],
                   services=list(d.get("services", [])))


@dataclass
class Finding:
    """The verdict of one rule on one scope (a node, a pair of nodes, a Service, or the cluster)."""

    id: str
    check: str
    title: str
    status: Status
    severity: Severity
    message: str
    scope: Scope = field(default_factory=Scope)
    evidence: list[EvidenceRef] = field(default_factory=list)
    remediation: Remediation | None = None
    references: list[str] = field(default_factory=list)
    failureModes: list[str] = field(default_factory=list)
    rootCause: bool = False
    explains: list[str] = field(default_factory=list)
    causedBy: list[str] = field(default_factory=list)
    key: str = ""
    # Structured facts of the verdict (e.g. {"from": "node-0", "to": "node-1", "layer": "overlay"})
    # that correlation matches on; free-form JSON, shown in json/markdown reports.
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"finding {self.id}: status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"finding {self.id}: severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        if not self.key:
            label = self.scope.label()
            self.key = f"{self.id}@{label}" if label else self.id

    @property
    def failing(self) -> bool:
        return self.status == "fail"

    @property
    def problem(self) -> bool:
        return self.status in ("fail", "warn", "error")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["scope"] = self.scope.to_dict()
        d["evidence"] = [e.to_dict() for e in self.evidence]
        d["remediation"] = self.remediation.to_dict() if self.remediation else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Finding":
        d = dict(d)
        d["scope"] = Scope.from_dict(d.get("scope") or {})
        d["evidence"] = [EvidenceRef.from_dict(e) for e in d.get("evidence") or []]
        d["remediation"] = Remediation.from_dict(d["remediation"]) if d.get("remediation") else None
        return _known_fields(cls, d)


@dataclass
class EvidenceBundle:
    """What a probe run saw: evidence from one or more nodes plus, optionally, the cluster inventory.

    The inventory is kept as the API's own JSON (`kubectl get -o json` shape) so a user can
    build one by hand with kubectl and so the lab, the live API and fixtures look the same.
    """

    evidence: list[Evidence] = field(default_factory=list)
    cluster: dict[str, Any] | None = None
    createdAt: str = field(default_factory=utcnow)
    tool: dict[str, str] = field(default_factory=dict)

    def merge(self, other: "EvidenceBundle") -> "EvidenceBundle":
        seen = {e.id for e in self.evidence}
        merged = self.evidence + [e for e in other.evidence if e.id not in seen]
        return EvidenceBundle(evidence=merged, cluster=self.cluster or other.cluster,
                              createdAt=self.createdAt, tool=self.tool or other.tool)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "kind": "EvidenceBundle",
            "createdAt": self.createdAt,
            "tool": self.tool,
            "cluster": self.cluster,
            "evidence": [e.to_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvidenceBundle":
        if d.get("kind") != "EvidenceBundle":
            raise ValueError("not an evidence bundle (expected \"kind\": \"EvidenceBundle\")")
        version = str(d.get("schemaVersion", ""))
        if version != SCHEMA_VERSION:
            raise ValueError(f"evidence bundle schemaVersion {version!r} is not supported (expected {SCHEMA_VERSION!r})")
        return cls(evidence=[Evidence.from_dict(e) for e in d.get("evidence", [])],
                   cluster=d.get("cluster"), createdAt=d.get("createdAt", utcnow()), tool=d.get("tool", {}))

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    generatedAt: str = field(default_factory=utcnow)
    tool: dict[str, str] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for f in self.findings:
            counts[f.status] += 1
        return counts

    @property
    def exit_code(self) -> int:
        return 1 if any(f.failing for f in self.findings) else 0

    def root_causes(self) -> list[Finding]:
        return [f for f in self.findings if f.rootCause and f.problem]

    def by_key(self) -> dict[str, Finding]:
        return {f.key: f for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "kind": "Report",
            "generatedAt": self.generatedAt,
            "tool": self.tool,
            "target": self.target,
            "summary": {**self.summary(), "exitCode": self.exit_code},
            "rootCauses": [f.key for f in self.root_causes()],
            "findings": [f.to_dict() for f in self.findings],
            "evidence": [e.to_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Report":
        return cls(findings=[Finding.from_dict(f) for f in d.get("findings", [])],
                   evidence=[Evidence.from_dict(e) for e in d.get("evidence", [])],
                   generatedAt=d.get("generatedAt", utcnow()), tool=d.get("tool", {}),
                   target=d.get("target", {}))


def _known_fields(cls: Any, d: Mapping[str, Any]) -> Any:
    """Build a dataclass from a dict, dropping keys a newer writer added: old readers keep working."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in known})
