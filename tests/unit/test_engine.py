"""The engine's failure policy and the model's JSON round trip."""
import json

import pytest
from support import bundle, ev, evset

from k8snetdoctor import engine, registry
from k8snetdoctor.model import EvidenceBundle, Finding, Remediation, Report
from k8snetdoctor.rule import CLUSTER, Rule


E = ev("sysctls", "a", {"net.ipv4.ip_forward": "0"})


def _rule(rid="demo.x", needs=("sysctls",), explains=()):
    return Rule(id=rid, title="t", description="d", severity="high", needs=needs, explains=explains,
                failureModes=("FM-17",), remediation=Remediation(summary="fix {node}", commands={"generic": ["fix"]}))


def test_a_rule_that_raises_becomes_an_error_finding_and_others_still_run():
    bad = _rule("demo.bad")
    good = _rule("demo.good")

    @bad.judge
    def _bad(view, evidence):
        raise KeyError("boom")

    @good.judge
    def _good(view, evidence):
        return [good.fail("broken", nodes=["a"], evidence=[E])]

    found = engine.judge([bad, good], None, evset(ev("sysctls", "a", {})))
    by_id = {f.id: f for f in found}
    assert by_id["demo.bad"].status == "error"
    assert "KeyError" in by_id["demo.bad"].message
    assert by_id["demo.good"].status == "fail"


def test_absent_evidence_and_absent_cluster_give_skip_with_reason():
    r1, r2 = _rule("demo.a", needs=("links",)), _rule("demo.b", needs=(CLUSTER,))
    r1.judge(lambda v, e: [])
    r2.judge(lambda v, e: [])
    found = engine.judge([r1, r2], None, evset(ev("sysctls", "a", {})))
    assert {f.id: f.status for f in found} == {"demo.a": "skip", "demo.b": "skip"}
    assert "no 'links' evidence" in found[0].message
    assert "cluster inventory" in found[1].message


def test_correlation_marks_cause_and_symptom():
    cause, symptom = _rule("demo.cause", explains=("demo.symptom",)), _rule("demo.symptom")
    cause.judge(lambda v, e: [cause.fail("off", nodes=["a"], evidence=[E])])
    symptom.judge(lambda v, e: [symptom.fail("broken", nodes=["a"], evidence=[E]),
                                            symptom.fail("broken", nodes=["b"], evidence=[E])])
    found = {f.key: f for f in engine.judge([cause, symptom], None, evset(ev("sysctls", "a", {})))}
    assert found["demo.cause@a"].rootCause and found["demo.cause@a"].explains == ["demo.symptom@a"]
    assert found["demo.symptom@a"].causedBy == ["demo.cause@a"] and not found["demo.symptom@a"].rootCause
    # nothing explains node b's symptom: it stays visible as a root cause of its own
    assert found["demo.symptom@b"].rootCause


def test_report_and_bundle_round_trip_through_json():
    from k8snetdoctor.checks.sysctl import IP_FORWARD

    b = bundle(ev("sysctls", "a", {"net.ipv4.ip_forward": "0"}))
    b2 = EvidenceBundle.from_dict(json.loads(b.dumps()))
    assert b2.evidence[0].to_dict() == b.evidence[0].to_dict()
    report = engine.analyze(b2, [IP_FORWARD])
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in report.findings]
    assert report.exit_code == 1 and again.exit_code == 1


def test_bundle_rejects_other_documents():
    with pytest.raises(ValueError, match="not an evidence bundle"):
        EvidenceBundle.from_dict({"kind": "Report"})
    with pytest.raises(ValueError, match="schemaVersion"):
        EvidenceBundle.from_dict({"kind": "EvidenceBundle", "schemaVersion": "99"})


def test_registry_finds_every_rule_with_a_judge_and_unique_ids():
    rules = registry.all_rules()
    assert "sysctl.ip-forward" in {r.id for r in rules}
    assert all(r.judge_fn for r in rules)
    assert all(r.failureModes for r in rules), "every rule cites the failure modes it recognises"
    assert registry.select(["sysctl"]) == [r for r in rules if r.check == "sysctl"]
    with pytest.raises(registry.RegistryError):
        registry.select(["no-such-rule"])


def test_finding_key_names_its_scope():
    f = Finding(id="x.y", check="x", title="t", status="fail", severity="high", message="m")
    assert f.key == "x.y"


def test_a_failing_finding_without_evidence_is_reported_as_a_rule_bug():
    r = _rule("demo.lazy")
    r.judge(lambda v, e: [r.fail("it is broken", nodes=["a"])])
    found = engine.judge([r], None, evset(ev("sysctls", "a", {})))
    assert [f.status for f in found] == ["error"]
    assert "carries no evidence" in found[0].message


def test_an_explains_test_decides_which_symptoms_a_cause_explains():
    from k8snetdoctor.rule import Explains

    def crosses(cause, symptom):
        return sorted(cause.details["pair"]) == sorted([symptom.details["from"], symptom.details["to"]])

    cause = _rule("demo.vxlan", explains=(Explains("demo.podpod", crosses),))
    symptom = _rule("demo.podpod")
    cause.judge(lambda v, e: [cause.fail("dropped", pairs=[["a", "b"]], evidence=[E], details={"pair": ["a", "b"]})])
    symptom.judge(lambda v, e: [
        symptom.fail("a->b", pairs=[["a", "b"]], evidence=[E], details={"from": "a", "to": "b"}),
        symptom.fail("a->c", pairs=[["a", "c"]], evidence=[E], details={"from": "a", "to": "c"})])
    found = {f.key: f for f in engine.judge([cause, symptom], None, evset(E))}
    assert found["demo.vxlan@a->b"].explains == ["demo.podpod@a->b"]
    assert found["demo.podpod@a->c"].rootCause and not found["demo.podpod@a->b"].rootCause
    report_doc = engine.analyze(bundle(E), [cause, symptom]).to_dict()
    from k8snetdoctor.reports.validate import validate_report

    validate_report(report_doc)
    assert report_doc["findings"][0]["details"] or report_doc["findings"][1]["details"]
