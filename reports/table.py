"""The terminal report: what to fix first, with the command to fix it, on one screen.

Root causes lead, each with the symptoms it explains under it and its fix, because a person
at a terminal acts on the first thing they read. Passes and skips are counted, not listed,
unless asked for: on a healthy cluster they are most of the lines and none of the news.
tabulate is imported inside `render` so that importing the reports package stays cheap.
"""
from __future__ import annotations

import re
import textwrap
from typing import Any

from k8snetdoctor.model import Finding, Report

from .outline import Node, check_platform, commands_for, outline, platforms_in_order, scope_text, summary_line

DEFAULT_WIDTH = 100
MIN_TEXT = 24
HEADERS = ("STATUS", "SEVERITY", "FINDING", "MESSAGE")

_COLORS = {"fail": "1;31", "error": "1;35", "warn": "33", "pass": "32", "skip": "2", "head": "1", "cmd": "36"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(text: str) -> str:
    """Raw output in a message must not move the cursor or recolour the user's terminal."""
    return _CONTROL.sub("?", text.replace("\t", "    "))


def _wrap(text: str, width: int) -> str:
    lines = []
    for para in _clean(text).splitlines() or [""]:
        lines.extend(textwrap.wrap(para, max(width, MIN_TEXT), break_on_hyphens=False) or [""])
    return "\n".join(lines)


class _Style:
    def __init__(self, color: bool):
        self.color = color

    def __call__(self, what: str, text: str) -> str:
        if not self.color or what not in _COLORS:
            return text
        return f"\x1b[{_COLORS[what]}m{text}\x1b[0m"

    def status(self, status: str) -> str:
        return self(status, status.upper())


def render(report: Report, *, verbose: bool = False, color: bool = False, width: int | None = None,
           platform: str | None = None, **_: Any) -> str:
    """Options the CLI passes to every format but this one ignores are accepted and dropped."""
    from tabulate import tabulate

    check_platform(platform)
    width = width or DEFAULT_WIDTH
    style = _Style(color)
    plan = outline(report)
    out: list[str] = []

    def table(rows: list[list[str]]) -> None:
        text = tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True)
        out.extend(line.rstrip() for line in text.splitlines())

    if plan.root_causes:
        out.append(style("head", "ROOT CAUSES (fix these first)"))
        for n, root in enumerate(plan.root_causes, 1):
            out.append("")
            _root_cause(out, n, root, style, width, platform, verbose)
    if plan.other_problems:
        if out:
            out.append("")
        out.append(style("head", "OTHER PROBLEMS"))
        table(_rows(plan.other_problems, style, width))
    hidden = plan.passes + plan.skips
    if hidden and verbose:
        if out:
            out.append("")
        out.append(style("head", "PASSED AND SKIPPED"))
        table(_rows(hidden, style, width))
    elif hidden:
        if out:
            out.append("")
        out.append(f"({len(plan.passes)} pass and {len(plan.skips)} skip not listed; --verbose lists them)")
    if not report.findings:
        out.append("No findings: no rule ran.")
    if out:
        out.append("")
    out.append(style("head", summary_line(report)))
    return "\n".join(out) + "\n"


def _root_cause(out: list[str], n: int, root: Node, style: _Style, width: int, platform: str | None,
                verbose: bool) -> None:
    f = root.finding
    head = f"{n}. [{style.status(f.status)} {f.severity}] {_clean(f.title)}"
    out.append(head)
    indent = "   "
    out.append(indent + _clean(f"{f.key}  ({scope_text(f)})"))
    out.extend(indent + line for line in _wrap(f.message, width - len(indent)).splitlines())
    if verbose:
        for ref in f.evidence:
            where = ", ".join(x for x in (ref.node, ref.source) if x)
            out.append(indent + f"evidence ({_clean(where)}):")
            out.extend(indent + "  " + line for line in _wrap(ref.excerpt, width - len(indent) - 2).splitlines())
    symptoms = [(depth, s) for depth, s in root.walk() if depth > 0]
    if symptoms:
        out.append(indent + "explains:")
        out.extend(_symptom_lines(symptoms, style, indent + "  ", width))
    _fix(out, f, style, indent, width, platform)


def _symptom_lines(symptoms: list[tuple[int, Finding]], style: _Style, indent: str, width: int) -> list[str]:
    """Aligned by hand: tabulate strips the leading spaces that show how deep a symptom sits."""
    names = ["  " * (depth - 1) + "└ " + _clean(s.key) for depth, s in symptoms]
    status_w = max(len(s.status) for _, s in symptoms)
    name_w = max(len(n) for n in names)
    lead = len(indent) + status_w + 2 + name_w + 2
    lines = []
    for (_, s), name in zip(symptoms, names):
        first, *rest = _wrap(s.message, width - lead).splitlines()
        status = style.status(s.status) + " " * (status_w - len(s.status))
        lines.append(f"{indent}{status}  {name.ljust(name_w)}  {first}".rstrip())
        lines.extend(" " * lead + line for line in rest)
    return lines


def _fix(out: list[str], f: Finding, style: _Style, indent: str, width: int, platform: str | None) -> None:
    rem = f.remediation
    if rem is None:
        return
    if rem.summary:
        out.extend(indent + line for line in _wrap("fix: " + rem.summary, width - len(indent)).splitlines())
    chosen, commands = commands_for(rem, platform)
    if commands:
        label = chosen if chosen == platform or platform is None else f"{chosen}; none for {platform}"
        out.append(indent + f"run ({label}):")
        # Commands are never wrapped: a wrapped command pastes as two broken ones.
        out.extend(indent + "  " + style("cmd", "$ " + _clean(c)) for c in commands)
    others = [p for p in platforms_in_order(rem) if p != chosen]
    if others:
        out.append(indent + f"also for: {', '.join(others)} (--platform shows them)")


def _rows(findings: list[Finding], style: _Style, width: int) -> list[list[str]]:
    rows = [[style.status(f.status), f.severity, _clean(f.key), f.message] for f in findings]
    _wrap_last(rows, width)
    return rows


def _wrap_last(rows: list[list[str]], width: int) -> None:
    """Give the message column whatever the other columns leave of `width`."""
    if not rows:
        return
    visible = [[_visible_len(c) for c in row[:-1]] for row in rows]
    visible.append([len(h) + 2 for h in HEADERS[:-1]])  # tabulate pads a headed column by two
    used = sum(max(col) for col in zip(*visible)) + 2 * (len(rows[0]) - 1)
    for row in rows:
        row[-1] = _wrap(row[-1], width - used)


def _visible_len(text: str) -> int:
    return max((len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in text.splitlines()), default=0)
