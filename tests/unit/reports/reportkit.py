"""Reports built through the real engine, so renderer tests see what users will see.

The findings cover every status: sysctl rules on three nodes (a fails, b passes, c could not
be read and skips), a rule that raises (error), a warning whose text is full of characters
that break naive renderers, and a cause/symptom pair linked by `explains`.
"""
from __future__ import annotations

from support import bundle, ev

from k8snetdoctor import engine
from k8snetdoctor.checks.sysctl import IP_FORWARD
from k8snetdoctor.model import EvidenceRef, Remediation, Report
from k8snetdoctor.rule import Rule

# What must come out of every format intact (or correctly escaped).
SPECIAL = "a|b <none> & \"quoted\" 'single' ünïcødé ☃ `tick`"

CAUSE = Rule(
    id="demo.udp-blocked", title="VXLAN UDP 8472 passes between nodes", description="test cause",
    severity="high", needs=("sysctls",), failureModes=("FM-01", "FM-02"),
    references=("https://github.com/flannel-io/flannel/issues/1243", "knowledge note: not a URL"),
    remediation=Remediation(
        summary="Allow UDP 8472 from the other nodes into {node}.",
        commands={"generic": ["iptables -I INPUT -p udp --dport 8472 -j ACCEPT"],
                  "ufw": ["ufw allow proto udp from 10.0.0.0/24 to any port 8472"],
                  "aws": ["aws ec2 authorize-security-group-ingress --protocol udp --port 8472"]}),
    explains=("demo.pod-to-pod",),
)
SYMPTOM = Rule(
    id="demo.pod-to-pod", title="Pods reach pods on other nodes", description="test symptom",
    severity="medium", needs=("sysctls",), failureModes=("FM-13",),
    remediation=Remediation(summary="Fix the cause first.", commands={"generic": ["netdoctor check --checks demo"]}),
)
WARNING = Rule(
    id="demo.odd-text", title="Odd text survives", description="test warning", severity="low",
    needs=("sysctls",), failureModes=("FM-08",),
    remediation=Remediation(summary="Nothing to do: " + SPECIAL, commands={"generic": ["echo '" + SPECIAL + "'"]}),
)
BROKEN = Rule(id="demo.broken", title="A rule with a bug", description="raises", severity="medium",
              needs=("sysctls",), failureModes=("FM-17",))


@CAUSE.judge
def _cause(view, evidence):
    a = evidence.get("sysctls", "a")
    return [CAUSE.fail("a drops VXLAN from b (encapsulated echo timed out)", nodes=["a"],
                       evidence=[EvidenceRef.to(a, "echo a->b: timeout\n```\nraw | line")], values={"node": "a"})]


@SYMPTOM.judge
def _symptom(view, evidence):
    a = evidence.get("sysctls", "a")
    return [SYMPTOM.fail("pod on b cannot reach pod on a", pairs=[["b", "a"]], evidence=[a])]


@WARNING.judge
def _warning(view, evidence):
    b = evidence.get("sysctls", "b")
    return [WARNING.warn(SPECIAL, nodes=["b"], evidence=[EvidenceRef.to(b, SPECIAL)])]


@BROKEN.judge
def _broken(view, evidence):
    raise KeyError("no such field <x> & y")


RULES = (IP_FORWARD, CAUSE, SYMPTOM, WARNING, BROKEN)


def build_report() -> Report:
    b = bundle(
        ev("sysctls", "a", {"net.ipv4.ip_forward": "0"}, excerpt="net.ipv4.ip_forward = 0"),
        ev("sysctls", "b", {"net.ipv4.ip_forward": "1"}, excerpt="net.ipv4.ip_forward = 1"),
        ev("sysctls", "c", error="permission denied reading /proc/sys"),
    )
    return engine.analyze(b, RULES)


def by_key(report: Report) -> dict:
    return {f.key: f for f in report.findings}
