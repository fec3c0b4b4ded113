from support import ev, evset, iptables_ev, judge, kp_view
from kubeproxy_fixtures import b6_configmap, configmap, dump_ev, sample_ev, view_at

from k8snetdoctor.checks.kubeproxy import BACKEND_SPLIT, MODE
from k8snetdoctor.checks.nodeport import RULES
from k8snetdoctor.engine import judge as judge_all

NFT_KUBE_PROXY = {"nftables": [
    {"metainfo": {"version": "1.0.9", "json_schema_version": 1}},
    {"table": {"family": "ip", "name": "kube-proxy", "handle": 3}},
    {"chain": {"family": "ip", "table": "kube-proxy", "name": "services", "handle": 7}},
]}
NFT_OTHER = {"nftables": [{"metainfo": {"version": "1.0.9"}}, {"table": {"family": "inet", "name": "filter", "handle": 1}}]}


def by_node(findings):
    return {f.scope.nodes[0]: f for f in findings if f.scope.nodes}


def legacy_copy(name: str, node: str):
    """An older dump of the same node as a stale iptables-legacy copy (FM-12)."""
    e = dump_ev(name, node, backend="legacy")
    text = e.data["text"].replace("(nf_tables)", "(legacy)")
    return iptables_ev(node, text, "legacy")


# -- kubeproxy.mode ---------------------------------------------------------------------------------
def test_mode_passes_in_iptables_mode_on_both_nodes_of_the_capture():
    found = by_node(judge(MODE, kp_view(), evset(dump_ev("kube-proxy-stopped", "node-a"),
                                                 dump_ev("kube-proxy-stopped", "node-b"))))
    assert {n: f.status for n, f in found.items()} == {"node-a": "pass", "node-b": "pass"}
    assert "iptables mode" in found["node-b"].message and "92 KUBE-* rules" in found["node-b"].message
    assert "last nat KUBE-SERVICES rule: -A KUBE-SERVICES" in found["node-a"].evidence[0].excerpt


def test_mode_fails_on_a_node_without_kube_proxy_rules_while_others_have_them():
    es = evset(dump_ev("udp-dns-like", "node-a"), sample_ev("kubelet-only.iptables-save.txt", "node-c"))
    found = by_node(judge(MODE, None, es))
    assert found["node-a"].status == "pass"
    c = found["node-c"]
    assert c.status == "fail" and "no kube-proxy rules while node-a has them" in c.message
    assert "7 '-A KUBE-' rules, mode none" in c.evidence[0].excerpt  # kubelet's chains are not kube-proxy's
    assert any("spec.nodeName=node-c" in cmd for cmd in c.remediation.commands["generic"])
    assert "FM-18" in c.failureModes


def test_mode_fails_when_configmap_mode_differs_from_the_rules():
    view = kp_view(configmap("kind: KubeProxyConfiguration\nmode: ipvs\n"))
    found = judge(MODE, view, evset(dump_ev("nodeport", "node-a")))
    assert [f.status for f in found] == ["fail"]
    assert "sets mode ipvs but node-a's rules are iptables mode" in found[0].message
    assert found[0].remediation.summary.endswith("configured for (ipvs).")
    assert any("get cm kube-proxy -o yaml | grep -E '^ +mode:'" in c for c in found[0].remediation.commands["generic"])


def test_mode_fails_when_configmap_names_a_mode_and_the_node_has_nothing():
    view = kp_view(b6_configmap())
    found = judge(MODE, view, evset(sample_ev("kubelet-only.iptables-save.txt", "node-a")))
    assert found[0].status == "fail"
    assert "sets mode iptables but node-a has no kube-proxy rules" in found[0].message
    assert "nftables mode not checked" in found[0].message


def test_mode_passes_when_b6_configmap_mode_is_empty_meaning_iptables():
    found = judge(MODE, kp_view(b6_configmap()), evset(dump_ev("baseline", "node-a")))
    assert found[0].status == "pass" and "iptables mode, as the ConfigMap says" in found[0].message


def test_mode_recognises_nftables_and_ipvs():
    nft = evset(sample_ev("kubelet-only.iptables-save.txt", "node-a"), ev("nft-ruleset", "node-a", NFT_KUBE_PROXY))
    found = judge(MODE, kp_view(configmap("mode: nftables\n")), nft)
    assert found[0].status == "pass" and "nftables mode" in found[0].message
    ipvs = judge(MODE, kp_view(configmap("mode: ipvs\n")), evset(sample_ev("ipvs-mode.nat.txt", "node-a")))
    assert ipvs[0].status == "pass" and "ipvs mode" in ipvs[0].message


def test_mode_warns_when_no_node_has_kube_proxy_and_nothing_is_configured():
    es = evset(sample_ev("kubelet-only.iptables-save.txt", "node-a"), ev("nft-ruleset", "node-a", NFT_OTHER))
    found = judge(MODE, None, es)
    assert found[0].status == "warn" and found[0].severity == "low"
    assert "no kube-proxy rules on any node" in found[0].message and "Cilium" in found[0].message
    assert "nftables mode not checked" not in found[0].message


def test_mode_warns_on_leftover_rules_of_a_previous_mode():
    es = evset(dump_ev("baseline", "node-a"), ev("nft-ruleset", "node-a", NFT_KUBE_PROXY))
    found = judge(MODE, None, es)
    assert found[0].status == "warn" and "iptables, nftables" in found[0].message


def test_mode_skips_a_node_whose_iptables_could_not_be_read():
    es = evset(ev("iptables-save", "node-a", error="iptables-nft-save: not found"), dump_ev("baseline", "node-b"))
    found = by_node(judge(MODE, None, es))
    assert found["node-a"].status == "skip" and "not found" in found["node-a"].message
    assert found["node-b"].status == "pass"


# -- kubeproxy.backend-split ------------------------------------------------------------------------
def test_backend_split_fails_with_both_counts_and_names_the_stale_backend():
    es = evset(dump_ev("kube-proxy-stopped", "node-a"), legacy_copy("clusterip", "node-a"))
    found = judge(BACKEND_SPLIT, kp_view(), es)
    assert [f.status for f in found] == ["fail"]
    f = found[0]
    assert "both iptables backends (nft: 104, legacy: 21)" in f.message
    assert "nft looks current" in f.message and "legacy is a stale copy" in f.message
    excerpts = "\n".join(e.excerpt for e in f.evidence)
    assert "iptables-nft-save: 104 '-A KUBE-' rules (v1.8.9 (nf_tables))" in excerpts
    assert "iptables-legacy-save: 21 '-A KUBE-' rules (v1.8.9 (legacy))" in excerpts
    cmds = f.remediation.commands["generic"]
    assert any(c.startswith("iptables-legacy -t nat -F; iptables-legacy -t nat -X") for c in cmds)
    assert "FM-12" in f.failureModes and f.severity == "critical"


def test_backend_split_without_view_ranks_by_rule_count():
    es = evset(legacy_copy("kube-proxy-stopped", "node-b"), dump_ev("baseline", "node-b"))
    f = judge(BACKEND_SPLIT, None, es)[0]
    assert f.status == "fail" and "legacy looks current" in f.message
    assert any(c.startswith("iptables-nft -t nat -F") for c in f.remediation.commands["generic"])


def test_backend_split_passes_when_the_other_backend_is_empty_or_unreadable():
    es = evset(dump_ev("nodeport", "node-a"), sample_ev("empty-legacy.iptables-save.txt", "node-a", "legacy"),
               dump_ev("nodeport", "node-b"),
               ev("iptables-save", "node-b", error="iptables-legacy-save: command not found",
                  source="iptables-legacy-save"))
    found = by_node(judge(BACKEND_SPLIT, None, es))
    assert found["node-a"].status == "pass" and "only the nft backend" in found["node-a"].message
    assert "nft: 32, legacy: 0" in found["node-a"].message
    assert found["node-b"].status == "pass" and "command not found" in found["node-b"].message


def test_backend_split_explains_the_stale_nodeport_rules_on_the_same_node():
    es = evset(dump_ev("kube-proxy-stopped", "node-a"), dump_ev("kube-proxy-stopped", "node-b"),
               legacy_copy("clusterip", "node-b"))
    findings = {f.key: f for f in judge_all([BACKEND_SPLIT, RULES], view_at(10), es)}
    split, rules = findings["kubeproxy.backend-split@node-b"], findings["nodeport.rules@node-b,fx/late-nodeport"]
    assert split.status == rules.status == "fail"
    assert rules.causedBy == [split.key] and split.rootCause and not rules.rootCause
