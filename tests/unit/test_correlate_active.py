"""Root causes over active evidence, through the whole engine: causes claim exactly their symptoms.

Evidence is hand-built in the shape the active probes write (tests/unit/checks/active_fixtures.py):
the overlay between node-1 and node-2 blocked, forwarding off on node-0, both at once, and a
broken path nothing explains, which must stay visible as a root cause of its own.
"""
from __future__ import annotations

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.engine import analyze
from k8snetdoctor.model import EvidenceBundle, Report
from k8snetdoctor.registry import all_rules
from tests.support import ev
from tests.unit.checks.active_fixtures import NODES, conn, dns, evidence, mesh, nodeport_view, vxlan

API = "kubernetes.default.svc.cluster.local."
SVC = "default/echo-nodeport:http"


def view(endpoint_node: str = "node-2") -> ClusterView:
    return nodeport_view(endpoint_node)


def scenario(*, vxlan_cut: bool = False, forward_off: str | None = None,
             stray: tuple[str, str] | None = None) -> Report:
    """Active evidence of a 3-node cluster (CoreDNS and the NodePort endpoint on node-2) with the given faults."""
    cut = {("node-1", "node-2"), ("node-2", "node-1")} if vxlan_cut else set()
    if forward_off:
        cut |= {(a, b) for a in NODES for b in NODES if a != b and forward_off in (a, b)}
    if stray:
        cut.add(stray)
    echoes = [vxlan(a, b, "no-reply" if vxlan_cut and {a, b} == {"node-1", "node-2"} else "reply")
              for a in NODES for b in NODES if a != b]
    np_broken = {n for n in NODES if (n, "node-2") in cut}
    nodeports = [conn("nodeport", f"node/{s}", t, "timeout" if t in np_broken else "ok", to=f"{SVC}@{t}", port=30080)
                 for s in NODES for t in NODES]
    queries = [dns(f"pod/{n}", API, "timeout" if (n, "node-2") in cut else "answer", category="dns-coredns-endpoint",
                   server="10.244.2.4", to_node="node-2", server_class="coredns-endpoint") for n in NODES]
    sysctls = [ev("sysctls", n, {"net.ipv4.ip_forward": "0" if n == forward_off else "1",
                                 "net.bridge.bridge-nf-call-iptables": "1"}) for n in NODES]
    items = (evidence("vxlan-echo", echoes) + evidence("conn", mesh("pod-pod", broken=cut) + nodeports)
             + evidence("dns", queries) + sysctls)
    return analyze(EvidenceBundle(evidence=items), all_rules(), view())


def failing_roots(r: Report) -> list[str]:
    return sorted(f.key for f in r.findings if f.rootCause and f.status == "fail")


def shown(r: Report) -> str:
    return "\n".join(f"{f.status} {f.key} causedBy={f.causedBy}" for f in r.findings if f.problem)


def test_healthy_has_no_problem():
    r = scenario()
    assert not [f for f in r.findings if f.problem], shown(r)


def test_blocked_overlay_is_the_one_root_and_claims_pods_nodeport_and_dns():
    r = scenario(vxlan_cut=True)
    assert failing_roots(r) == ["vxlan.udp-blocked@node-1->node-2"], shown(r)
    root = r.root_causes()[0]
    symptoms = {k.split("@")[0] for k in root.explains}
    assert symptoms == {"crossnode.pod-pod", "nodeport.reachable", "dns.unreachable-from"}, shown(r)
    assert r.findings[0] is root                      # the report leads with it
    assert all(f.causedBy for f in r.findings if f.failing and f is not root)


def test_forwarding_off_is_the_one_root_of_its_node():
    r = scenario(forward_off="node-0")
    assert failing_roots(r) == ["sysctl.ip-forward@node-0"], shown(r)


def test_two_faults_two_roots_each_with_its_own_symptoms():
    r = scenario(vxlan_cut=True, forward_off="node-0")
    assert failing_roots(r) == ["sysctl.ip-forward@node-0", "vxlan.udp-blocked@node-1->node-2"], shown(r)
    by = r.by_key()
    assert by["crossnode.pod-pod@node-1->node-2"].causedBy == ["vxlan.udp-blocked@node-1->node-2"]
    assert by["crossnode.pod-pod@node-0->node-1"].causedBy == ["sysctl.ip-forward@node-0"]


def test_a_symptom_nothing_explains_stays_a_root_cause():
    r = scenario(stray=("node-0", "node-1"))
    assert failing_roots(r) == ["crossnode.pod-pod@node-0->node-1"], shown(r)


def test_without_active_evidence_the_active_rules_skip_with_the_reason():
    r = analyze(EvidenceBundle(evidence=[ev("sysctls", "node-0", {"net.ipv4.ip_forward": "1"})]), all_rules())
    skipped = {f.id: f.message for f in r.findings if f.status == "skip"}
    assert "no 'vxlan-echo' evidence was collected" in skipped["vxlan.udp-blocked"]
    assert "no 'conn' evidence" in skipped["crossnode.pod-pod"] and "no 'dns' evidence" in skipped["dns.upstream"]
