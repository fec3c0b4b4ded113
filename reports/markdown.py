"""The ticket report: everything a second engineer needs without running the tool again.

Root causes come first with their evidence (so the reader can check the claim) and their
fix for every platform (the reader's platform may not be the writer's). Text from the cluster
(node names, messages, raw command output) is escaped or fenced so that a `|`, a `<none>` or
a line of backticks in it cannot break the page it is pasted into.
"""
from __future__ import annotations

import json
import re
from typing import Any

from k8snetdoctor.model import Finding, Report

from .outline import Node, outline, platforms_in_order, scope_text, summary_line

# Where FM ids link to: the failure-mode catalog, one anchor per id.
FAILURE_MODES_DOC: str | None = None  # no public anchor yet: ids are shown as text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPECIAL = re.compile(r"([\\`*_\[\]<>|&#~])")
_BLOCK_START = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))")
_URL = re.compile(r"^https?://[^\s<>]+$")


def _plain(text: str) -> str:
    return _CONTROL.sub("?", text.replace("\r\n", "\n"))


def esc(text: str) -> str:
    """Markdown-escape prose so cluster text is shown literally, not interpreted."""
    lines = [_SPECIAL.sub(r"\\\1", line) for line in _plain(text).split("\n")]
    return "  \n".join(_BLOCK_START.sub(_unblock, line) for line in lines)


def _unblock(m: re.Match) -> str:
    """A line of cluster text must not start a list or a heading: escape the marker."""
    marker = m.group(2)
    return m.group(1) + (marker + "\\" if marker[0].isdigit() else "\\" + marker)


def cell(text: str) -> str:
    """A table cell: escaped, pipes included, and on one physical line."""
    return "<br>".join(_SPECIAL.sub(r"\\\1", line) for line in _plain(text).split("\n"))


def code(text: str) -> str:
    """An inline code span that survives backticks inside it."""
    text = _plain(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced(text: str, info: str = "") -> list[str]:
    """A fenced block longer than any backtick run inside it, so raw output cannot close it."""
    text = _plain(text).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, text, fence]


def link(ref: str) -> str:
    if _URL.match(ref):
        return f"<{ref}>"
    return esc(ref)


def fm_link(fm: str, base: str | None) -> str:
    """An FM id; a link when the caller knows where the catalogue is published."""
    return f"[{fm}]({base}#{fm.lower()})" if base else f"`{fm}`"


def render(report: Report, *, fm_base: str | None = FAILURE_MODES_DOC, **_: Any) -> str:
    """`fm_base` is where FM ids link to; other formats' options are accepted and ignored."""
    plan = outline(report)
    out: list[str] = ["# netdoctor report", ""]
    out.append(f"**{summary_line(report)}** · exit code {report.exit_code}")
    out.append("")
    meta = [f"generated {esc(report.generatedAt)}"]
    if report.tool:
        meta.append("by " + esc(" ".join(str(v) for v in report.tool.values())))
    out.append(" ".join(meta))
    if report.target:
        out += ["", "Target: " + code(json.dumps(report.target, ensure_ascii=False, sort_keys=True))]

    if plan.root_causes:
        out += ["", "## Root causes"]
        for n, root in enumerate(plan.root_causes, 1):
            out += [""] + _root_cause(n, root, fm_base)
    if plan.other_problems:
        out += ["", "## Other findings", ""] + _table(plan.other_problems, caused_by=True)
    hidden = plan.passes + plan.skips
    if hidden:
        out += ["", "<details>", f"<summary>{len(plan.passes)} passed, {len(plan.skips)} skipped</summary>", ""]
        out += _table(hidden, caused_by=False) + ["", "</details>"]
    if not report.findings:
        out += ["", "No findings: no rule ran."]
    return "\n".join(out) + "\n"


def _root_cause(n: int, root: Node, fm_base: str | None) -> list[str]:
    f = root.finding
    out = [f"### {n}. {esc(f.title)}", ""]
    out.append(f"**{f.status.upper()}** · severity **{f.severity}** · {code(f.key)} · scope: {esc(scope_text(f))}")
    out += ["", esc(f.message) or "_(no message)_"]
    symptoms = [(depth, s) for depth, s in root.walk() if depth > 0]
    if symptoms:
        out += ["", "**Explains:**", ""]
        out += ["  " * (d - 1) + f"- **{s.status.upper()}** {code(s.key)}: {cell(s.message)}" for d, s in symptoms]
    for ref in f.evidence:
        where = [f"node {code(ref.node)}" if ref.node else "cluster"]
        if ref.source:
            where.append(f"source {code(ref.source)}")
        out += ["", f"**Evidence** ({', '.join(where)}):", ""]
        out += fenced(ref.excerpt or "(no excerpt)")
    out += _remediation(f)
    if f.failureModes:
        out += ["", "**Failure modes:** " + ", ".join(fm_link(fm, fm_base) for fm in f.failureModes)]
    if f.references:
        out += ["", "**References:**", ""] + [f"- {link(r)}" for r in f.references]
    return out


def _remediation(f: Finding) -> list[str]:
    rem = f.remediation
    if rem is None:
        return []
    out = ["", f"**Fix:** {esc(rem.summary)}" if rem.summary else "**Fix:**"]
    for platform in platforms_in_order(rem):
        out += ["", f"{esc(platform)}:", ""] + fenced("\n".join(rem.commands[platform]), "sh")
    return out


def _table(findings: list[Finding], caused_by: bool) -> list[str]:
    head = ["Status", "Severity", "Finding", "Scope", "Message"] + (["Caused by"] if caused_by else [])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in findings:
        row = [f.status.upper(), f.severity, cell(f.key), cell(scope_text(f)), cell(f.message)]
        if caused_by:
            row.append("<br>".join(cell(k) for k in f.causedBy))
        out.append("| " + " | ".join(row) + " |")
    return out
