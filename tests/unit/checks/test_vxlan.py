"""vxlan.udp-blocked on hand-built echo evidence: healthy, both ways, one way, and its explains edges."""
from __future__ import annotations

from k8snetdoctor.checks.vxlan import UDP_BLOCKED, broken_direction
from k8snetdoctor.correlate import correlate
from k8snetdoctor.model import Finding
from k8snetdoctor.registry import all_rules
from tests.support import evset, judge

from active_fixtures import evidence, symptom, vxlan


def echoes(**results: str) -> list:
    """All 6 directed echoes of 3 nodes; results keyed "a_b" (node-a -> node-b) override "reply"."""
    out = []
    for a in range(3):
        for b in range(3):
            if a != b:
                out.append(vxlan(f"node-{a}", f"node-{b}", results.get(f"n{a}_n{b}", "reply")))
    return evidence("vxlan-echo", out)


def failing(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


def test_healthy_pairs_pass():
    found = judge(UDP_BLOCKED, None, evset(echoes()))
    assert [f.status for f in found] == ["pass"] * 3
    assert [f.scope.nodePairs for f in found] == [[["node-0", "node-1"]], [["node-0", "node-2"]],
                                                 [["node-1", "node-2"]]]


def test_both_directions_blocked_is_one_finding_for_the_pair():
    found = failing(judge(UDP_BLOCKED, None, evset(echoes(n1_n2="no-reply", n2_n1="no-reply"))))
    assert len(found) == 1
    f = found[0]
    assert f.scope.nodePairs == [["node-1", "node-2"]] and f.details["direction"] == "both"
    assert f.details["layer"] == "overlay" and f.failureModes == ["FM-01", "FM-02"]
    assert "both directions" in f.message and f.evidence and f.remediation.commands["aws"]
    assert set(f.remediation.commands) >= {"generic", "ufw", "firewalld", "aws", "k3s"}


def test_one_direction_is_localised_by_the_two_echoes():
    """B drops VXLAN from A: A's echo gets no reply; B's echo is answered but B's stack drops the reply."""
    found = failing(judge(UDP_BLOCKED, None, evset(echoes(n1_n2="no-reply", n2_n1="reply-dropped-locally"))))
    assert [(f.details["from"], f.details["to"], f.details["direction"]) for f in found] == \
        [("node-1", "node-2", "node-1->node-2")]
    assert found[0].scope.nodePairs == [["node-1", "node-2"]]


def test_reverse_direction():
    found = failing(judge(UDP_BLOCKED, None, evset(echoes(n2_n1="no-reply", n1_n2="reply-dropped-locally"))))
    assert found[0].details["direction"] == "node-2->node-1" and found[0].scope.nodePairs == [["node-2", "node-1"]]


def test_broken_direction_words():
    assert broken_direction("a", "b", "no-reply") == ("a", "b")
    assert broken_direction("a", "b", "reply-dropped-locally") == ("b", "a")
    assert broken_direction("a", "b", "reply") is None


def test_unjudged_echoes_and_missing_evidence():
    ev = evidence("vxlan-echo", [vxlan("node-0", "node-1", "skipped"), vxlan("node-0", "node-2", "error")])
    assert [f.status for f in judge(UDP_BLOCKED, None, evset(ev))] == ["skip"]
    skipped = judge(UDP_BLOCKED, None, evset())
    assert skipped[0].status == "skip" and "vxlan-echo" in skipped[0].message


def test_explains_pod_paths_nodeports_and_dns_across_the_pair_only():
    cause = failing(judge(UDP_BLOCKED, None, evset(echoes(n1_n2="no-reply", n2_n1="no-reply"))))[0]
    pod = symptom("crossnode.pod-pod", **{"from": "node-2", "to": "node-1", "layer": "pod"})
    other_pod = symptom("crossnode.pod-pod", **{"from": "node-0", "to": "node-1", "layer": "pod"})
    np_far = symptom("nodeport.reachable", node="node-1", endpointNodes=["node-2"])
    np_local = symptom("nodeport.reachable", node="node-1", endpointNodes=["node-1"])
    dns_far = symptom("dns.unreachable-from", node="node-1", corednsNodes=["node-2"])
    dns_other = symptom("dns.unreachable-from", node="node-0", corednsNodes=["node-2"])
    out = correlate([cause, pod, other_pod, np_far, np_local, dns_far, dns_other], all_rules())
    roots = {f.key for f in out if f.rootCause}
    assert roots == {cause.key, other_pod.key, np_local.key, dns_other.key}
    assert pod.causedBy == np_far.causedBy == dns_far.causedBy == [cause.key]
