"""The reading order shared by table and markdown, on correlations the engine really produces."""
from __future__ import annotations

from support import bundle, ev

from k8snetdoctor import engine
from k8snetdoctor.model import Remediation
from k8snetdoctor.reports import markdown, table
from k8snetdoctor.reports.outline import outline


def _rule_failing_on(rid: str, node: str, explains: tuple[str, ...] = ()):
    from k8snetdoctor.rule import Rule

    rule = Rule(id=rid, title=rid, description="d", severity="high", needs=("sysctls",), failureModes=("FM-01",),
                remediation=Remediation(summary="fix " + rid, commands={"generic": ["true"]}), explains=explains)
    rule.judge(lambda view, evidence: [rule.fail(f"{rid} broken", nodes=[node], evidence=[evidence.get("sysctls", node)])])
    return rule


def _analyze(*rules):
    return engine.analyze(bundle(ev("sysctls", "a", {})), rules)


def test_a_chain_of_causes_nests_under_the_first():
    report = _analyze(_rule_failing_on("chain.a", "a", ("chain.b",)), _rule_failing_on("chain.b", "a", ("chain.c",)),
                      _rule_failing_on("chain.c", "a"))
    plan = outline(report)
    assert [(d, f.key) for d, f in plan.root_causes[0].walk()] == [(0, "chain.a@a"), (1, "chain.b@a"), (2, "chain.c@a")]
    assert plan.other_problems == []
    lines = table.render(report).splitlines()
    b = next(line for line in lines if "chain.b@a" in line)
    c = next(line for line in lines if "chain.c@a" in line)
    assert c.index("└") == b.index("└") + 2
    assert "  - **FAIL** `chain.c@a`" in markdown.render(report)


def test_a_symptom_of_two_causes_appears_under_both():
    report = _analyze(_rule_failing_on("two.x", "a", ("two.s",)), _rule_failing_on("two.y", "a", ("two.s",)),
                      _rule_failing_on("two.s", "a"))
    plan = outline(report)
    assert [[f.key for _, f in root.walk()] for root in plan.root_causes] == [["two.x@a", "two.s@a"], ["two.y@a", "two.s@a"]]
    assert plan.other_problems == []


def test_causes_that_explain_each_other_are_listed_once_as_other_problems():
    report = _analyze(_rule_failing_on("loop.p", "a", ("loop.q",)), _rule_failing_on("loop.q", "a", ("loop.p",)))
    plan = outline(report)
    assert plan.root_causes == []
    assert [f.key for f in plan.other_problems] == ["loop.p@a", "loop.q@a"]
    text = table.render(report)
    assert text.count("loop.p@a") == 1 and text.count("loop.q@a") == 1
