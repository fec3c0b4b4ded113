"""The CI report: JUnit XML, the one format every CI system already knows how to show.

One testsuite per check and one testcase per finding (named by its key, stable across runs),
so a CI history can track "sysctl.ip-forward@node-b" from red to green. A warning passes the
build but keeps its message in system-out, where CI shows it next to the test.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from typing import Any

from k8snetdoctor.model import Finding, Report

from .outline import commands_for, scope_text


@lru_cache(maxsize=1)
def _not_xml() -> re.Pattern[str]:
    """Characters XML 1.0 forbids even escaped; raw command output can contain them.

    Compiled on first use: the pattern costs ~8 ms, which importing the package should not pay.
    """
    return re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _not_xml().sub("?", text)


def _details(f: Finding) -> str:
    """What a CI log reader needs to act: where, why, on what evidence, and the fix."""
    lines = [f"{f.status.upper()} [{f.severity}] {f.title}", f"scope: {scope_text(f)}", f.message]
    if f.causedBy:
        lines.append("caused by: " + ", ".join(f.causedBy))
    if f.explains:
        lines.append("explains: " + ", ".join(f.explains))
    for ref in f.evidence:
        where = ", ".join(x for x in (ref.node, ref.source) if x)
        lines += [f"evidence ({where}):", ref.excerpt]
    if f.remediation is not None:
        platform, commands = commands_for(f.remediation, None)
        if f.remediation.summary:
            lines.append("fix: " + f.remediation.summary)
        if commands:
            lines.append(f"run ({platform}):")
            lines += [f"  $ {c}" for c in commands]
    if f.failureModes:
        lines.append("failure modes: " + ", ".join(f.failureModes))
    lines += ["see: " + r for r in f.references]
    return _x("\n".join(lines))


def _testcase(suite: ET.Element, f: Finding) -> None:
    case = ET.SubElement(suite, "testcase", name=_x(f.key), classname=_x(f.id), time="0")
    if f.status in ("fail", "error"):
        tag = "failure" if f.status == "fail" else "error"
        ET.SubElement(case, tag, message=_x(f.message), type=f.severity).text = _details(f)
    elif f.status == "skip":
        ET.SubElement(case, "skipped", message=_x(f.message))
    elif f.status == "warn":
        ET.SubElement(case, "system-out").text = _details(f)


def _timestamp(generated_at: str) -> str:
    """The JUnit XSD allows no zone designator; generatedAt is always UTC, so drop its Z."""
    return _x(generated_at.removesuffix("Z"))


def _counts(findings: list[Finding]) -> dict[str, str]:
    def n(status: str) -> str:
        return str(sum(1 for f in findings if f.status == status))

    return {"tests": str(len(findings)), "failures": n("fail"), "errors": n("error"), "skipped": n("skip"),
            "time": "0"}


def render(report: Report, **_: Any) -> str:
    """Options meant for other formats are accepted and ignored."""
    root = ET.Element("testsuites", name="netdoctor", **_counts(report.findings))
    checks: dict[str, list[Finding]] = {}
    for f in report.findings:
        checks.setdefault(f.check, []).append(f)
    for check in sorted(checks):
        findings = checks[check]
        suite = ET.SubElement(root, "testsuite", name=_x(check), timestamp=_timestamp(report.generatedAt),
                              **_counts(findings))
        for f in findings:
            _testcase(suite, f)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
