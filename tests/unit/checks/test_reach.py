"""nodeport.reachable and hostport.reachable on hand-built conn evidence and a small inventory."""
from __future__ import annotations

from active_fixtures import NODES, conn, evidence, nodeport_view, symptom

from k8snetdoctor.checks.nodeport import RULES
from k8snetdoctor.checks.reach import HOSTPORT_REACHABLE, NODEPORT_REACHABLE, endpoint_nodes
from k8snetdoctor.checks.sysctl import IP_FORWARD
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.correlate import correlate
from k8snetdoctor.registry import all_rules
from tests.support import evset, judge

SVC = "default/echo-nodeport:http"


def view(endpoint_node: str = "node-2") -> ClusterView:
    return nodeport_view(endpoint_node)


def nodeport_tests(failing_on: str | None = None, result: str = "refused", expect_unreachable: str | None = None):
    out = []
    for src in [f"node/{n}" for n in NODES] + ["external"]:
        for tgt in NODES:
            expect = "unreachable" if tgt == expect_unreachable else "reachable"
            res = result if tgt == failing_on else ("timeout" if expect == "unreachable" else "ok")
            out.append(conn("nodeport", src, tgt, res, to=f"{SVC}@{tgt}", port=30080, expect=expect))
    return evidence("conn", out)


def test_endpoint_nodes_from_the_inventory():
    assert endpoint_nodes(view()) == {SVC: ["node-2"]} and endpoint_nodes(None) == {}


def test_nodeport_passes_everywhere_when_all_answer():
    found = judge(NODEPORT_REACHABLE, view(), evset(nodeport_tests()))
    assert [(f.status, f.scope.nodes) for f in found] == [("pass", [n]) for n in NODES]


def test_nodeport_failing_on_one_node_names_it_its_clients_and_endpoint_nodes():
    found = [f for f in judge(NODEPORT_REACHABLE, view(), evset(nodeport_tests("node-1"))) if f.status == "fail"]
    assert len(found) == 1
    f = found[0]
    assert f.scope.nodes == ["node-1"] and f.scope.services == ["default/echo-nodeport"]
    assert f.details == {"node": "node-1", "from": ["external", "node/node-0", "node/node-1", "node/node-2"],
                         "endpointNodes": ["node-2"], "services": [SVC]}
    assert f.remediation.commands["aws"] and "refused" in f.evidence[0].excerpt


def test_etp_local_drop_where_no_endpoint_is_by_design():
    found = judge(NODEPORT_REACHABLE, view(), evset(nodeport_tests(expect_unreachable="node-0")))
    assert {f.status for f in found} == {"pass"}


def test_nodeport_rules_missing_on_the_same_node_explains_it_and_only_it():
    sym = [f for f in judge(NODEPORT_REACHABLE, view(), evset(nodeport_tests("node-1"))) if f.status == "fail"][0]
    here = RULES.fail("rules missing", nodes=["node-1"])
    elsewhere = RULES.fail("rules missing", nodes=["node-0"])
    correlate([here, elsewhere, sym], all_rules())
    assert sym.causedBy == [here.key] and here.rootCause and elsewhere.rootCause and not sym.rootCause


def test_forwarding_off_on_the_endpoint_node_explains_nodeports_elsewhere():
    sym = symptom("nodeport.reachable", node="node-0", endpointNodes=["node-2"])
    cause = IP_FORWARD.fail("off", nodes=["node-2"])
    unrelated = IP_FORWARD.fail("off", nodes=["node-1"])
    correlate([cause, unrelated, sym], all_rules())
    assert sym.causedBy == [cause.key]


def hostport_tests(result: str = "ok"):
    return evidence("conn", [conn("hostport", f"node/{n}", "node-1", result, to="default/echo-hostport@node-1",
                                  port=8081) for n in NODES])


def test_hostport_pass_and_fail():
    assert [f.status for f in judge(HOSTPORT_REACHABLE, None, evset(hostport_tests()))] == ["pass"]
    bad = judge(HOSTPORT_REACHABLE, None, evset(hostport_tests("refused")))
    assert [(f.status, f.scope.nodes) for f in bad] == [("fail", ["node-1"])]
    assert bad[0].details["from"] == ["node/node-0", "node/node-1", "node/node-2"]


def test_hostport_explained_by_portmap_on_its_node():
    from k8snetdoctor.checks.hostport import PORTMAP

    sym = judge(HOSTPORT_REACHABLE, None, evset(hostport_tests("refused")))[0]
    cause = PORTMAP.fail("no portmap", nodes=["node-1"])
    correlate([cause, sym], all_rules())
    assert sym.causedBy == [cause.key] and cause.rootCause


def test_needs_the_inventory_and_conn_evidence():
    assert judge(NODEPORT_REACHABLE, None, evset(nodeport_tests()))[0].status == "skip"
    assert "conn" in judge(HOSTPORT_REACHABLE, None, evset())[0].message
