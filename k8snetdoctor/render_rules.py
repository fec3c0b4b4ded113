"""Text for `netdoctor list` and `netdoctor explain`: the rules' own documentation."""
from __future__ import annotations

import textwrap
from typing import Iterable

from .rule import Rule


def rules_table(rules: Iterable[Rule]) -> str:
    rows = [(r.id, r.severity, ",".join(r.failureModes), r.title) for r in rules]
    if not rows:
        return "no rules"
    widths = [max(len(str(row[i])) for row in rows + [("ID", "SEVERITY", "FAILURE MODES", "")]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(("ID", "SEVERITY", "FAILURE MODES"), widths)) + "  TITLE"]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    return "\n".join(lines)


def explain_rule(rule: Rule, width: int = 92) -> str:
    wrap = lambda s, ind="  ": textwrap.fill(s, width, initial_indent=ind, subsequent_indent=ind)  # noqa: E731
    out = [f"{rule.id} — {rule.title}", "",
           f"severity: {rule.severity}    failure modes: {', '.join(rule.failureModes) or '-'}",
           f"needs: {', '.join(rule.needs) or '-'}" + (f"    uses if present: {', '.join(rule.wants)}" if rule.wants else ""),
           "", "Why:", wrap(rule.description), ""]
    if rule.explains:
        ids = dict.fromkeys(e if isinstance(e, str) else e.rule_id for e in rule.explains)   # Explains: its rule id
        out += ["When it fails it also explains: " + ", ".join(ids), ""]
    rem = rule.remediation.render()  # placeholders stay visible, escaped braces are undone
    if rem.summary or rem.commands:
        out.append("Fix:")
        if rem.summary:
            out.append(wrap(rem.summary))
        for platform, cmds in rem.commands.items():
            out.append(f"  [{platform}]")
            out += [f"    {c}" for c in cmds]
        out.append("")
    if rule.references:
        out.append("References:")
        out += [f"  {r}" for r in rule.references]
    return "\n".join(out).rstrip() + "\n"
