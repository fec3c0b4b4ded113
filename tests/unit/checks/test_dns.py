"""dns.unreachable-from, dns.upstream and dns.loop on hand-built query results."""
from __future__ import annotations

from active_fixtures import NODES, dns, evidence, symptom

from k8snetdoctor.checks.dns import LOOP, UNREACHABLE_FROM, UPSTREAM, cluster_name
from k8snetdoctor.correlate import correlate
from k8snetdoctor.registry import all_rules
from tests.support import evset, judge

API = "kubernetes.default.svc.cluster.local."
EXT = "example.com."
COREDNS_IP = "10.244.2.4"


def queries(*, cut_from: str | None = None, external: str = "answer", loop: bool = False):
    """Each node's pod asks a cluster and an external name of the ClusterIP and of CoreDNS (on node-2)."""
    out = []
    for n in NODES:
        frm = f"pod/{n}"
        cluster = "timeout" if n == cut_from else "answer"
        ext = "timeout" if n == cut_from else external
        out += [dns(frm, API, cluster), dns(frm, EXT, ext, rcode="REFUSED" if ext == "refused" else None),
                dns(frm, API, cluster, category="dns-coredns-endpoint", server=COREDNS_IP, to_node="node-2",
                    server_class="coredns-endpoint")]
    up_server, up_class = ("127.0.0.53", "loopback") if loop else ("203.0.113.53", "other")
    out.append(dns("pod/node-2", EXT, "unreachable" if loop else external, category="dns-coredns-upstream",
                   server=up_server, server_class=up_class))
    return evset(evidence("dns", out))


def fails(rule, ev):
    return [f for f in judge(rule, None, ev) if f.status == "fail"]


def test_cluster_names():
    assert cluster_name({"qname": API}) and cluster_name({"qname": "kubernetes.default"})
    assert not cluster_name({"qname": EXT}) and not cluster_name({"qname": "example.com"})


def test_healthy_everything_passes():
    ev = queries()
    for rule in (UNREACHABLE_FROM, UPSTREAM, LOOP):
        assert {f.status for f in judge(rule, None, ev)} == {"pass"}, rule.id


def test_one_node_cut_off_from_coredns():
    ev = queries(cut_from="node-1")
    found = fails(UNREACHABLE_FROM, ev)
    assert [(f.scope.nodes, f.details["corednsNodes"]) for f in found] == [(["node-1"], ["node-2"])]
    assert found[0].failureModes == ["FM-32"] and not fails(UPSTREAM, ev) and not fails(LOOP, ev)


def test_upstream_down_cluster_names_answer_external_fail_everywhere():
    ev = queries(external="timeout")
    found = fails(UPSTREAM, ev)
    assert [(f.scope.nodes, f.details["results"]) for f in found] == [(["node-2"], ["timeout"])]
    assert found[0].failureModes == ["FM-33"] and not fails(UNREACHABLE_FROM, ev)


def test_upstream_is_not_blamed_when_some_pod_resolves_external_names():
    assert not fails(UPSTREAM, queries(cut_from="node-1"))


def test_loop_is_the_root_and_explains_the_failing_external_names():
    ev = queries(external="refused", loop=True)
    loop, upstream = fails(LOOP, ev), fails(UPSTREAM, ev)
    assert [(f.scope.nodes, f.details["server"], f.details["class"]) for f in loop] == \
        [(["node-2"], "127.0.0.53", "loopback")]
    assert "refused" in loop[0].message and loop[0].failureModes == ["FM-29"]
    correlate(loop + upstream, all_rules())
    assert loop[0].rootCause and upstream and upstream[0].causedBy == [loop[0].key]


def test_dns_from_a_node_explained_by_forwarding_off_there_or_on_the_coredns_node():
    from k8snetdoctor.checks.sysctl import IP_FORWARD

    sym = symptom("dns.unreachable-from", node="node-1", corednsNodes=["node-2"])
    on_coredns = IP_FORWARD.fail("off", nodes=["node-2"])
    elsewhere = IP_FORWARD.fail("off", nodes=["node-0"])
    correlate([on_coredns, elsewhere, sym], all_rules())
    assert sym.causedBy == [on_coredns.key]


def test_no_dns_evidence_skips():
    assert judge(UPSTREAM, None, evset())[0].status == "skip"
