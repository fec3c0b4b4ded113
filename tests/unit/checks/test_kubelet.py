"""kubelet.unreachable (from the control plane) and kubelet.exposed (from outside) on SYN results."""
from __future__ import annotations

from active_fixtures import NODES, entry, evidence

from k8snetdoctor.checks.kubelet import EXPOSED, UNREACHABLE
from tests.support import evset, judge


def syn(frm: str, node: str, result: str, expect: str):
    return entry("kubelet", "syn", frm, node, node, result, expect=expect, port=10250)


def scan(cp: dict[str, str] | None = None, ext: dict[str, str] | None = None):
    cp, ext = cp or {}, ext or {}
    return evset(evidence("conn", [syn("node/node-0", n, cp.get(n, "open"), "reachable") for n in NODES]
                          + [syn("external", n, ext.get(n, "filtered"), "unreachable") for n in NODES]))


def test_healthy_open_from_the_control_plane_closed_from_outside():
    assert {f.status for f in judge(UNREACHABLE, None, scan())} == {"pass"}
    assert {f.status for f in judge(EXPOSED, None, scan())} == {"pass"}


def test_filtered_from_the_control_plane_fails_on_that_node():
    found = [f for f in judge(UNREACHABLE, None, scan(cp={"node-1": "filtered"})) if f.status == "fail"]
    assert [(f.scope.nodes, f.details["port"], f.details["from"]) for f in found] == \
        [(["node-1"], 10250, ["node/node-0"])]
    assert found[0].failureModes == ["FM-34", "FM-36"] and "10250" in found[0].remediation.commands["generic"][0]


def test_open_from_outside_is_critical():
    found = [f for f in judge(EXPOSED, None, scan(ext={"node-2": "open"})) if f.status == "fail"]
    assert [(f.scope.nodes, f.severity) for f in found] == [(["node-2"], "critical")]
    assert found[0].failureModes == ["FM-39"]


def test_closed_from_outside_is_fine_and_unjudged_is_skipped():
    assert {f.status for f in judge(EXPOSED, None, scan(ext={"node-0": "closed"}))} == {"pass"}
    only_skipped = evset(evidence("conn", [syn("external", "node-0", "skipped", "unreachable")]))
    assert judge(EXPOSED, None, only_skipped)[0].status == "skip"
