from support import ev, evset, iptables_ev, judge, kp_view
from kubeproxy_fixtures import configmap, dump_ev, sample_ev, slice_of, view_at

from k8snetdoctor.checks.kubeproxy import MODE
from k8snetdoctor.checks.nodeport import ADDRESSES, ETP_LOCAL, LISTENER, RULES
from k8snetdoctor.engine import judge as judge_all


def by_node(findings):
    return {f.scope.nodes[0]: f for f in findings if f.scope.nodes}


def both(name: str):
    return evset(dump_ev(name, "node-a"), dump_ev(name, "node-b"))


def excerpts(f) -> str:
    return "\n".join(e.excerpt for e in f.evidence)


# -- nodeport.rules ---------------------------------------------------------------------------------
def test_rules_kube_proxy_stopped_fails_node_b_for_late_nodeport_and_passes_node_a():
    found = by_node(judge(RULES, kp_view(), both("kube-proxy-stopped")))
    a, b = found["node-a"], found["node-b"]
    assert a.status == "pass"
    assert b.status == "fail" and b.severity == "high"
    assert b.scope.nodes == ["node-b"] and b.scope.services == ["fx/late-nodeport"]
    assert b.message.startswith("node-b: kube-proxy on node-b is not running or not syncing (rules stale)")
    assert "fx/late-nodeport:http (NodePort 30083/TCP) has no rules on node-b while node-a has them" in b.message
    assert ('no KUBE-NODEPORTS rule for --dport 30083 on node-b; node-a has: -A KUBE-NODEPORTS -p tcp -m comment '
            '--comment "fx/late-nodeport:http" -m tcp --dport 30083 -j KUBE-EXT-VR3TRYXC5TDZSJEO') in excerpts(b)
    assert {e.node for e in b.evidence} == {"node-a", "node-b"}
    cmds = b.remediation.commands["generic"]
    assert any("delete pod -l k8s-app=kube-proxy --field-selector spec.nodeName=node-b" in c for c in cmds)
    assert "curl -s http://10.250.0.6:10256/healthz   # kube-proxy health: lastUpdated must be recent" in cmds
    assert b.failureModes == ["FM-18", "FM-13"]


def test_rules_pass_when_both_nodes_route_nodeports_to_their_endpoints():
    for scenario, name, refs in ((3, "nodeport", ["fx/web-nodeport:http"]),
                                 (7, "multi-port", ["fx/multi:http", "fx/multi:metrics"]),
                                 (8, "udp-dns-like", ["fx/multi:http", "fx/web-local:http"])):
        found = by_node(judge(RULES, view_at(scenario), both(name)))
        for node in ("node-a", "node-b"):
            f = found[node]
            assert f.status == "pass", (name, node, f.message)
            assert all(r in f.message for r in refs)
    nodeport = judge(RULES, view_at(3), both("nodeport"))[0]
    assert "--dport 30080 -j KUBE-EXT-HZNS6SEP7USYHEXZ" in excerpts(nodeport)


def test_rules_no_endpoints_is_not_a_kube_proxy_fault():
    found = by_node(judge(RULES, view_at(5), both("no-endpoints")))
    for node in ("node-a", "node-b"):
        f = found[node]
        assert f.status == "pass"
        assert "fx/no-backend:http (NodePort 30082/TCP) has no ready endpoints" in f.message
        assert "not a kube-proxy fault" in f.message
        assert '"fx/no-backend:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30082 -j REJECT' \
            in excerpts(f)


def test_rules_stale_endpoints_fail():
    def moved(items):  # web-nodeport's node-b pod was replaced; kube-proxy never noticed
        slice_of(items, "web-nodeport")["endpoints"][1]["addresses"] = ["10.244.1.99"]

    found = by_node(judge(RULES, view_at(3, edit=moved), both("nodeport")))
    b = found["node-b"]
    assert b.status == "fail" and b.scope.services == ["fx/web-nodeport"]
    assert ("fx/web-nodeport:http (NodePort 30080/TCP): rules DNAT to 10.244.0.12:8080, 10.244.1.12:8080 but the "
            "ready endpoints are 10.244.0.12, 10.244.1.99") in b.message
    assert "-j DNAT --to-destination 10.244.1.12:8080" in excerpts(b)


def test_rules_not_ready_endpoint_still_in_rules_is_stale():
    def unready(items):
        slice_of(items, "web-nodeport")["endpoints"][0]["conditions"]["ready"] = False

    f = by_node(judge(RULES, view_at(3, edit=unready), both("nodeport")))["node-a"]
    assert f.status == "fail" and "the ready endpoints are 10.244.1.12" in f.message


def test_rules_etp_local_node_local_chain_is_checked():
    assert {f.status for f in judge(RULES, view_at(4), both("nodeport-etp-local"))} == {"pass"}

    def moved(items):  # the endpoint now runs on node-b: node-a's KUBE-SVL is stale
        slice_of(items, "web-local")["endpoints"][0]["nodeName"] = "node-b"

    found = by_node(judge(RULES, view_at(4, edit=moved), both("nodeport-etp-local")))
    assert found["node-a"].status == "fail"
    assert "node-local rules (KUBE-SVL-TQP3YJD7IGCCMZUQ) DNAT to 10.244.0.13 but the local ready endpoints are none" \
        in found["node-a"].message
    assert "local ready endpoints are 10.244.0.13" in found["node-b"].message


def test_rules_left_for_a_deleted_service_are_stale():
    def deleted(items):
        items[:] = [o for o in items if "late-nodeport" not in o["metadata"]["name"]]

    found = by_node(judge(RULES, view_at(10, edit=deleted), both("kube-proxy-stopped")))
    assert found["node-b"].status == "pass"
    a = found["node-a"]
    assert a.status == "fail" and "1 NodePort rule(s) remain for ports no Service uses" in a.message
    assert '--comment "fx/late-nodeport:http" -m tcp --dport 30083' in excerpts(a)


def test_rules_missing_everywhere_says_so():
    found = by_node(judge(RULES, view_at(10), both("nodeport")))
    assert found["node-a"].status == "fail"
    assert "fx/late-nodeport:http (NodePort 30083/TCP) has no rules on any node" in found["node-a"].message
    assert "fx/web-nodeport" not in found["node-a"].scope.services


def test_rules_node_without_kube_proxy_fails_and_kubeproxy_mode_explains_it():
    es = evset(dump_ev("nodeport", "node-a"), sample_ev("kubelet-only.iptables-save.txt", "node-b"))
    findings = {f.key: f for f in judge_all([MODE, RULES], view_at(3), es)}
    rules = findings["nodeport.rules@node-b,fx/web-nodeport"]
    assert rules.status == "fail" and "has no rules on node-b while node-a has them" in rules.message
    assert rules.causedBy == ["kubeproxy.mode@node-b"] and findings["kubeproxy.mode@node-b"].rootCause
    assert findings["nodeport.rules@node-a"].status == "pass"


def test_rules_skip_ipvs_nodes_and_services_without_nodeports():
    es = evset(dump_ev("nodeport", "node-a"), sample_ev("ipvs-mode.nat.txt", "node-b"))
    found = by_node(judge(RULES, view_at(3), es))
    assert found["node-b"].status == "skip" and "iptables mode" in found["node-b"].message
    only_clusterip = judge(RULES, view_at(2), both("clusterip"))
    assert [f.status for f in only_clusterip] == ["skip"] and "nothing to judge" in only_clusterip[0].message


# -- nodeport.addresses -----------------------------------------------------------------------------
def test_addresses_fail_when_internal_ip_does_not_accept_nodeports():
    f = judge(ADDRESSES, kp_view(), evset(dump_ev("nodeport-addresses", "node-b")))[0]
    assert f.status == "fail" and f.scope.nodes == ["node-b"]
    assert "NodePorts (30080, 30081, 30084, 30085) are DNATed only for destination 127.0.0.1" in f.message
    assert "InternalIP 10.250.0.6 is not covered" in f.message
    assert '-A KUBE-SERVICES -d 127.0.0.1/32 -m comment --comment "kubernetes service nodeports; NOTE: this must ' \
           'be the last rule in this chain" -j KUBE-NODEPORTS' == f.evidence[0].excerpt
    assert f.remediation.summary == "Let kube-proxy accept NodePorts on 10.250.0.6: widen or unset nodePortAddresses."
    assert "kubectl -n kube-system rollout restart ds kube-proxy" in f.remediation.commands["generic"]
    assert "FM-20" in f.failureModes


def test_addresses_pass_with_addrtype_local():
    found = by_node(judge(ADDRESSES, kp_view(), both("udp-dns-like")))
    assert {n: f.status for n, f in found.items()} == {"node-a": "pass", "node-b": "pass"}
    assert "--dst-type LOCAL -j KUBE-NODEPORTS" in found["node-b"].evidence[0].excerpt


def test_addresses_warn_when_restricted_but_internal_ip_covered_or_unknown():
    text = dump_ev("nodeport-addresses", "node-b").data["text"].replace("-d 127.0.0.1/32", "-d 10.250.0.6/32")
    f = judge(ADDRESSES, kp_view(), evset(iptables_ev("node-b", text)))[0]
    assert f.status == "warn" and "accepted only on 10.250.0.6" in f.message
    no_view = judge(ADDRESSES, None, evset(dump_ev("nodeport-addresses", "node-b")))[0]
    assert no_view.status == "warn" and "accepted only on 127.0.0.1" in no_view.message


def test_addresses_warn_when_configmap_restricts_but_node_does_not():
    view = kp_view(configmap("mode: iptables\nnodePortAddresses: [\"127.0.0.0/8\"]\n"))
    f = judge(ADDRESSES, view, evset(dump_ev("udp-dns-like", "node-a")))[0]
    assert f.status == "warn" and "restricts nodePortAddresses to 127.0.0.0/8" in f.message
    assert "once it restarts, InternalIP 10.250.0.2 stops accepting NodePorts" in f.message and f.severity == "medium"
    covered = kp_view(configmap("nodePortAddresses: [\"10.250.0.0/24\"]\n"))
    g = judge(ADDRESSES, covered, evset(dump_ev("udp-dns-like", "node-a")))[0]
    assert g.status == "warn" and g.severity == "low" and "once it restarts" not in g.message


# -- nodeport.listener ------------------------------------------------------------------------------
def sockets(node, *extra):
    base = [{"proto": "tcp", "local": "0.0.0.0", "port": 10250, "state": "LISTEN", "process": "kubelet"},
            {"proto": "tcp", "local": "10.250.0.2", "port": 10256, "state": "LISTEN", "process": "kube-proxy"}]
    return ev("sockets", node, base + list(extra))


def test_listener_no_socket_on_nodeports_is_normal():
    f = judge(LISTENER, kp_view(), evset(sockets("node-a")))[0]
    assert f.status == "pass"
    assert "NodePorts are DNAT rules, not listeners; ss -ltn shows nothing since 1.24" in f.message
    assert "30083/tcp" in f.message


def test_listener_host_process_on_a_nodeport_warns():
    squat = {"proto": "tcp", "local": "0.0.0.0", "port": 30080, "state": "LISTEN", "process": "nginx"}
    f = judge(LISTENER, kp_view(), evset(sockets("node-a", squat)))[0]
    assert f.status == "warn" and f.scope.services == ["fx/web-nodeport"]
    assert "nginx on 0.0.0.0:30080/tcp (the NodePort of fx/web-nodeport:http)" in f.message
    assert "ss -ltnup 'sport = :30080'   # on node-a: which process holds it" in f.remediation.commands["generic"]
    assert "kubectl -n fx edit svc web-nodeport   # or pick another spec.ports[].nodePort" in \
        f.remediation.commands["generic"]


def test_listener_old_kube_proxy_port_opener_passes_and_view_is_optional():
    opener = {"proto": "tcp", "local": "::", "port": 30080, "state": "LISTEN", "process": "kube-proxy"}
    f = judge(LISTENER, None, evset(sockets("node-a", opener), dump_ev("nodeport", "node-a")))[0]
    assert f.status == "pass" and "pre-1.24 port opener" in f.message


def test_listener_with_an_unnamed_owner_is_not_called_a_conflict():
    unnamed = {"proto": "tcp", "local": "::", "port": 30080, "state": "LISTEN", "process": None}
    f = judge(LISTENER, kp_view(), evset(sockets("node-a", unnamed)))[0]
    assert f.status == "pass" and "run the probe with hostPID" in f.message


def test_listener_skips_without_sockets_evidence():
    f = judge(LISTENER, kp_view(), evset(dump_ev("nodeport", "node-a")))
    assert [x.status for x in f] == ["skip"] and "sockets" in f[0].message


# -- nodeport.etp-local -----------------------------------------------------------------------------
def test_etp_local_drops_on_node_b_by_design_and_serves_on_node_a():
    found = by_node(judge(ETP_LOCAL, view_at(4), both("nodeport-etp-local")))
    a, b = found["node-a"], found["node-b"]
    assert a.status == "pass" and "local endpoint for fx/web-local:http" in a.message
    assert "-A KUBE-SVL-TQP3YJD7IGCCMZUQ" in a.evidence[0].excerpt
    assert b.status == "warn" and b.severity == "low" and b.scope.services == ["fx/web-local"]
    assert "external traffic to node-b:30081 is dropped by design" in b.message
    assert "not a kube-proxy fault" in b.message
    assert b.evidence[0].excerpt == ('-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "fx/web-local:http has '
                                     'no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30081 -j DROP')
    cmds = b.remediation.commands["generic"]
    assert cmds[0].startswith("kubectl -n fx patch svc web-local -p '{\"spec\":{\"externalTrafficPolicy\":\"Cluster\"}}'")
    assert cmds[2].startswith("kubectl -n fx get svc web-local -o yaml | grep healthCheckNodePort")
    assert "FM-14" in b.failureModes


def test_etp_local_nothing_to_judge_without_such_services():
    f = judge(ETP_LOCAL, view_at(3), both("nodeport"))
    assert [x.status for x in f] == ["skip"]
