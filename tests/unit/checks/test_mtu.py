"""mtu.path on hand-built DF-ping evidence, with ordinary pings as the baseline."""
from __future__ import annotations

from active_fixtures import conn, entry, evidence

from k8snetdoctor.checks.flannel import MTU as FLANNEL_MTU
from k8snetdoctor.checks.mtu import PATH
from k8snetdoctor.correlate import correlate
from k8snetdoctor.registry import all_rules
from tests.support import evset, judge

POD_IP = "10.244.1.3"


def df(frm: str, to_node: str, size: int, result: str, *, mtu: int = 1450, local: bool = False, route: int = 1450):
    expect = "ok" if size == mtu else "too-big"
    return entry("mtu-pod", "df-ping", f"pod/{frm}", f"default/echo-{to_node}", to_node, result, expect=expect,
                 host=POD_IP, size=size, mtu=mtu, routeMtu=route, reportedMtu=None, icmpFrom=None, local=local)


def ping(frm: str, to_node: str, result: str):
    return conn("pod-pod", f"pod/{frm}", to_node, result, method="icmp", host=POD_IP)


def test_at_the_mtu_passes_above_refused_locally():
    ev = evidence("mtu", [df("node-0", "node-1", 1450, "ok"), df("node-0", "node-1", 1451, "too-big", local=True)])
    found = judge(PATH, None, evset(ev, evidence("conn", [ping("node-0", "node-1", "ok")])))
    assert [(f.status, f.scope.nodePairs) for f in found] == [("pass", [["node-0", "node-1"]])]


def test_full_size_lost_while_small_passes_is_mtu():
    ev = evidence("mtu", [df("node-0", "node-1", 1450, "timeout"), df("node-0", "node-1", 1451, "too-big", local=True)])
    found = judge(PATH, None, evset(ev, evidence("conn", [ping("node-0", "node-1", "ok")])))
    assert [(f.status, f.details["pair"]) for f in found] == [("fail", ["node-0", "node-1"])]
    assert found[0].failureModes == ["FM-08"] and "DF size 1450" in found[0].evidence[0].excerpt


def test_everything_lost_is_reachability_not_mtu():
    ev = evidence("mtu", [df("node-0", "node-1", 1450, "timeout")])
    found = judge(PATH, None, evset(ev, evidence("conn", [ping("node-0", "node-1", "timeout")])))
    assert [f.status for f in found] == ["pass"]


def test_local_too_big_at_the_mtu_and_a_black_hole_above_it():
    local = evidence("mtu", [df("node-1", "node-2", 1450, "too-big", local=True, route=1400)])
    assert judge(PATH, None, evset(local))[0].status == "fail"          # no conn evidence needed: it is local
    hole = evidence("mtu", [df("node-1", "node-2", 1450, "ok"), df("node-1", "node-2", 1451, "timeout")])
    assert judge(PATH, None, evset(hole, evidence("conn", [ping("node-1", "node-2", "ok")])))[0].status == "fail"
    bigger = evidence("mtu", [df("node-1", "node-2", 1450, "ok"), df("node-1", "node-2", 1451, "ok")])
    assert judge(PATH, None, evset(bigger))[0].status == "pass"         # carries more than assumed: harmless


def test_flannel_mtu_on_a_node_of_the_pair_explains_it():
    ev = evidence("mtu", [df("node-0", "node-1", 1450, "timeout")])
    sym = judge(PATH, None, evset(ev))[0]
    cause = FLANNEL_MTU.fail("too big", nodes=["node-1"])
    correlate([cause, sym], all_rules())
    assert sym.causedBy == [cause.key] and cause.rootCause
