"""Root-cause correlation end to end on a real 3-node lab: node facts plus active tests, all rules.

Every fault of the catalogue (config and behaviour alike, taken from the catalogue itself so a
new fault cannot escape this test) must end as exactly one failing root cause that names the
fault's node or node pair, with every other failing finding hanging under it; a healthy lab has
none; two unrelated faults give two; and VXLAN dropped one way is reported in that direction.
"""
from __future__ import annotations

import secrets
import subprocess
import time

import pytest

from labkit import down_and_check

from k8snetdoctor.engine import analyze, plan
from k8snetdoctor.lab import faults
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.faults_impl import coredns_pod
from k8snetdoctor.model import Finding, Report
from k8snetdoctor.probes.active.context import RunConfig
from k8snetdoctor.registry import all_rules
from k8snetdoctor.transport.netns import collect_lab

pytestmark = pytest.mark.root

NAME = "rc" + secrets.token_hex(3)
RULES = all_rules()
KINDS = sorted(plan(RULES).kinds)
# Behaviour faults have no config rule to name; the rule their root cause must come from.
BEHAVIOUR_ROOT = {
    "vxlan-blocked": "vxlan.udp-blocked",
    "sg-closed": "nodeport.reachable",
    "dns-upstream-down": "dns.upstream",
    "coredns-unreachable-from": "vxlan.udp-blocked",
    "coredns-loop": "dns.loop",
    "kubelet-port-closed": "kubelet.unreachable",
    "kubelet-exposed": "kubelet.exposed",
}
# Faults that break nothing on purpose: the planner expects the drop, so no test fails and no
# rule may call it a failure; the config rule's warning (by design) is the one root it leaves.
BY_DESIGN = {"etp-local-no-endpoint": "nodeport.etp-local"}
# Fault runs use the probe's defaults, slightly widened, and fewer tests in flight per vantage: on a
# loaded 2-core machine 1 s timeouts gave false timeouts and the lab's echo servers queued.
FAST = RunConfig(connect_timeout=2.0, http_timeout=2.5, icmp_timeout=1.5, syn_timeout=1.5, vxlan_timeout=1.5,
                 dns_timeout=2.0, per_vantage=8)


@pytest.fixture(scope="module")
def lab():
    from k8snetdoctor.lab.lab import down, up

    try:
        built = up(NAME, nodes=3)
    except BaseException:
        down(NAME)
        raise
    try:
        yield built
    finally:
        down_and_check(NAME)


def judge(lab, config: RunConfig | None = FAST) -> Report:
    return analyze(collect_lab(lab, kinds=KINDS, active_config=config), RULES)


def shown(r: Report) -> str:
    return "\n".join(f"  {f.status} {f.key} root={f.rootCause} causedBy={f.causedBy}: {f.message[:160]}"
                     for f in r.findings if f.status != "pass" and f.status != "skip") or "  (none)"


def roots(r: Report) -> list[Finding]:
    return [f for f in r.findings if f.rootCause and f.status == "fail"]


def traces_to(r: Report, f: Finding, root: Finding) -> bool:
    """f is the root or is caused, through any chain of symptoms, by it."""
    by, seen, todo = r.by_key(), set(), [f.key]
    while todo:
        k = todo.pop()
        if k == root.key:
            return True
        if k not in seen:
            seen.add(k)
            todo += by[k].causedBy
    return False


def scope_nodes(f: Finding) -> set[str]:
    return set(f.scope.nodes) | {n for p in f.scope.nodePairs for n in p}


def test_healthy_lab_has_no_failing_finding(lab):
    t0 = time.monotonic()
    r = judge(lab, config=None)
    took = time.monotonic() - t0
    assert not [f for f in r.findings if f.status in ("fail", "error")], shown(r)
    judged = {f.id for f in r.findings if f.status == "pass"}
    active = {"vxlan.udp-blocked", "crossnode.pod-pod", "crossnode.node-pod", "crossnode.pod-node",
              "nodeport.reachable", "hostport.reachable", "mtu.path", "dns.unreachable-from", "dns.upstream",
              "dns.loop", "kubelet.unreachable", "kubelet.exposed"}
    assert active <= judged, f"active rules not judged on the healthy lab: {sorted(active - judged)}"
    assert took < 20, took


def _expected(lab, fault: faults.Fault, record: dict) -> tuple[set[str], set[str] | None]:
    """(rule ids the root may come from, the node pair it must name when the fault acts on a pair)."""
    node, peer = record["node"], record["peer"]
    if fault.kind == "config":
        return set(fault.rules), ({node, peer} if peer else None)
    assert fault.name in BEHAVIOUR_ROOT, f"behaviour fault {fault.name}: say which rule finds it (BEHAVIOUR_ROOT)"
    if fault.name == "coredns-unreachable-from":      # VXLAN from --node dropped at CoreDNS's node
        peer = coredns_pod(lab.spec).node
    return {BEHAVIOUR_ROOT[fault.name]}, ({node, peer} if peer else None)


@pytest.mark.parametrize("fault", faults.CATALOGUE, ids=lambda f: f.name)
def test_each_fault_is_one_root_cause_with_its_symptoms_under_it(lab, fault):
    record = faults.apply(lab, fault.name)
    try:
        r = judge(lab)
    finally:
        faults.clear(lab, fault.name)
    node = record["node"]
    found = roots(r)
    if fault.name in BY_DESIGN:
        assert not found, f"{fault.name} is by design, yet failing roots:\n" + shown(r)
        warned = [f for f in r.findings if f.rootCause and f.id == BY_DESIGN[fault.name] and node in f.scope.nodes]
        assert warned and all(f.status == "warn" for f in warned), shown(r)
        return
    assert len(found) == 1, f"{fault.name} on {node}/{record['peer']}: {len(found)} failing roots:\n" + shown(r)
    root = found[0]
    rule_ids, pair = _expected(lab, fault, record)
    assert root.id in rule_ids, f"{fault.name}: root is {root.key}, expected one of {sorted(rule_ids)}:\n" + shown(r)
    assert node in scope_nodes(root), f"{fault.name}: root {root.key} does not name {node}:\n" + shown(r)
    if pair:
        assert [set(p) for p in root.scope.nodePairs] == [pair], f"{fault.name}: {root.key} is not {pair}"
    for f in r.findings:
        if f.status == "fail":
            assert traces_to(r, f, root), f"{fault.name}: {f.key} does not hang under {root.key}:\n" + shown(r)
    assert not [f for f in r.findings if f.status == "error"], shown(r)


def test_two_faults_at_once_are_two_root_causes(lab):
    faults.apply(lab, "vxlan-blocked", node="node-1", peer="node-2")
    faults.apply(lab, "ip-forward-off", node="node-0")
    try:
        r = judge(lab)
    finally:
        faults.clear(lab)
    found = sorted(roots(r), key=lambda f: f.id)
    assert [(f.id, scope_nodes(f)) for f in found] == [("sysctl.ip-forward", {"node-0"}),
                                                       ("vxlan.udp-blocked", {"node-1", "node-2"})], shown(r)
    for f in r.findings:
        if f.status == "fail":
            assert any(traces_to(r, f, root) for root in found), f"{f.key} hangs under no root:\n" + shown(r)
    # each root claims its own symptoms: pods between node-1 and node-2 are the overlay's, node-0's are forwarding's
    by = r.by_key()
    assert by["crossnode.pod-pod@node-1->node-2"].causedBy == [found[1].key], shown(r)
    assert found[0].key in by["crossnode.pod-pod@node-0->node-1"].causedBy, shown(r)


def test_vxlan_dropped_one_way_is_reported_in_that_direction(lab):
    """node-2 drops VXLAN from node-1 (INPUT): node-1's echo gets no reply, node-2's echo is answered but
    the reply never reaches node-2's stack. Both say node-1 -> node-2; one root, in that direction."""
    a, b = "node-1", "node-2"
    rule = ["INPUT", "-s", lab.node_ip(a), "-p", "udp", "--dport", str(S.VXLAN_PORT), "-j", "DROP"]

    def ipt(*args: str) -> None:
        subprocess.run(["ip", "netns", "exec", lab.node_ns(b), "iptables", "-w", *args], check=True,
                       capture_output=True)

    ipt("-I", *rule)
    try:
        r = judge(lab)
    finally:
        ipt("-D", *rule)
    found = roots(r)
    assert [(f.id, f.scope.nodePairs, f.details.get("direction")) for f in found] == \
        [("vxlan.udp-blocked", [[a, b]], f"{a}->{b}")], shown(r)
    assert "the other direction works" in found[0].message


def test_lab_is_healthy_again_after_every_fault(lab):
    assert lab.faults() == []
    r = judge(lab)
    assert not [f for f in r.findings if f.status in ("fail", "error")], shown(r)
