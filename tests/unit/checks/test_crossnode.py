"""crossnode.* on hand-built conn evidence: one finding per (from, to) node and path kind."""
from __future__ import annotations

import pytest
from active_fixtures import conn, evidence, mesh, symptom

from k8snetdoctor.checks.crossnode import NODE_POD, POD_NODE, POD_POD
from k8snetdoctor.correlate import correlate
from k8snetdoctor.registry import all_rules
from tests.support import evset, judge


@pytest.mark.parametrize("rule,vantage", [(POD_POD, "pod"), (NODE_POD, "node"), (POD_NODE, "pod")])
def test_each_pair_passes_or_fails_on_its_own(rule, vantage):
    category = rule.id.split(".", 1)[1]
    healthy = judge(rule, None, evset(evidence("conn", mesh(category, vantage))))
    assert len(healthy) == 9 and {f.status for f in healthy} == {"pass"}
    broken = judge(rule, None, evset(evidence("conn", mesh(category, vantage, broken=[("node-1", "node-2")]))))
    bad = [f for f in broken if f.status == "fail"]
    assert [(f.details["from"], f.details["to"], f.details["layer"]) for f in bad] == [("node-1", "node-2", "pod")]
    assert bad[0].scope.nodePairs == [["node-1", "node-2"]] and bad[0].evidence and bad[0].remediation.commands
    assert "timeout" in bad[0].evidence[0].excerpt


def test_other_categories_vantages_and_unjudged_results_are_ignored():
    ev = evidence("conn", [conn("pod-pod", "node/node-0", "node-1", "timeout"),     # a node vantage: node-pod's
                           conn("pod-pod", "pod/node-0", "node-1", "skipped"),
                           conn("nodeport", "pod/node-0", "node-1", "timeout"),
                           conn("pod-pod", "pod/node-0", "node-2", "timeout", expect="any")])
    assert [f.status for f in judge(POD_POD, None, evset(ev))] == ["skip"]


def test_pod_to_kubelet_only_is_explained_by_the_closed_kubelet_port():
    from k8snetdoctor.checks.kubelet import UNREACHABLE

    ev = evidence("conn", [conn("pod-node", "pod/node-0", "node-1", "timeout", method="tcp", to="node-1", port=10250),
                           conn("pod-node", "pod/node-0", "node-1", "ok", method="icmp", to="node-1")])
    sym = [f for f in judge(POD_NODE, None, evset(ev)) if f.status == "fail"]
    assert sym[0].details["ports"] == [10250]
    cause = UNREACHABLE.fail("x", nodes=["node-1"], details={"node": "node-1", "port": 10250})
    other = UNREACHABLE.fail("x", nodes=["node-2"], details={"node": "node-2", "port": 10250})
    correlate([cause, other, *sym], all_rules())
    assert sym[0].causedBy == [cause.key] and not sym[0].rootCause


def test_crossnode_explains_dns_and_nodeports_when_no_overlay_evidence_ran():
    pod = [f for f in judge(POD_POD, None, evset(evidence("conn", mesh("pod-pod", broken=[("node-0", "node-2")]))))
           if f.status == "fail"][0]
    dns = symptom("dns.unreachable-from", node="node-0", corednsNodes=["node-2"])
    dns_far = symptom("dns.unreachable-from", node="node-1", corednsNodes=["node-2"])
    correlate([pod, dns, dns_far], all_rules())
    assert dns.causedBy == [pod.key] and dns_far.rootCause and pod.rootCause
