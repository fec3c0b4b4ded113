"""iptables.py (the reader) and kube_iptables.py (kube-proxy's structures) on the real kube-proxy
1.26 dumps and on samples from other versions.

Each README row of tests/fixtures/kube-proxy-1.26 has a test here stating its conclusion
in terms of the parsed rules.
"""
from pathlib import Path

import pytest

from support import FIXTURES, KP126
from k8snetdoctor import iptables as ipt
from k8snetdoctor import kube_iptables as kipt

SAMPLES = FIXTURES / "iptables"
DUMPS = sorted(KP126.glob("*.iptables-save.txt"))


def load(name: str) -> ipt.Ruleset:
    path = KP126 / f"{name}.iptables-save.txt"
    return ipt.parse(path.read_text())


def sample(name: str) -> ipt.Ruleset:
    return ipt.parse((SAMPLES / name).read_text())


def rule_set(rs: ipt.Ruleset) -> set[tuple[str, str]]:
    return {(r.table, r.line) for r in rs.all_rules()}


def entry(rs: ipt.Ruleset, port: int) -> kipt.NodePortEntry:
    return next(e for e in kipt.nodeport_entries(rs) if e.port == port)


# -- every real dump --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.name)
def test_every_dump_parses_completely(path: Path):
    text = path.read_text()
    rs = ipt.parse(text)
    assert rs.unparsed == [] and rs.warnings == []
    assert rs.version == "v1.8.9 (nf_tables)"
    assert set(rs.tables) == {"mangle", "filter", "nat"}
    assert kipt.kube_rule_count(rs) == sum(1 for ln in text.splitlines() if ln.startswith("-A KUBE-"))
    assert len(list(rs.all_rules())) == sum(1 for ln in text.splitlines() if ln.startswith("-A "))
    assert sum(len(t.chains) for t in rs.tables.values()) == sum(1 for ln in text.splitlines() if ln.startswith(":"))
    assert kipt.proxy_mode(rs) == "iptables"
    assert rs.chain("nat", "PREROUTING").policy == "ACCEPT"
    assert rs.chain("nat", "KUBE-SERVICES").policy is None


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.name)
def test_kube_proxy_chain_names_are_the_hash_of_their_service_port(path: Path):
    rs = ipt.parse(path.read_text())
    for r in rs.rules("nat", "KUBE-SERVICES"):
        if r.target and r.target.startswith("KUBE-SVC-"):
            ref = r.comment.removesuffix(" cluster IP")
            assert r.target == f"KUBE-SVC-{kipt.chain_hash(ref, r.protocol)}"


@pytest.mark.parametrize("path", DUMPS + sorted(SAMPLES.glob("*.txt")), ids=lambda p: p.name)
def test_quick_target_equals_the_full_parse(path: Path):
    for r in ipt.parse(path.read_text()).all_rules():
        fresh = ipt.IptRule(r.table, r.chain, r.line)  # target read before any option is parsed
        assert fresh.target == ipt._parse_options(r.line).target, r.line


def test_chain_counts_per_table():
    counts = {p.name.split(".iptables")[0]: len(ipt.parse(p.read_text()).chain_names("nat")) for p in DUMPS}
    assert counts["baseline.node-a"] == 11
    assert counts["kube-proxy-stopped.node-a"] == 43
    assert counts["kube-proxy-stopped.node-b"] == 38
    assert len(load("baseline.node-a").chain_names("filter")) == 9
    assert len(load("baseline.node-a").chain_names("mangle")) == 6


def test_comments_with_spaces_and_negations_are_single_options():
    rs = load("baseline.node-a")
    last = kipt.last_service_rule(rs)
    assert last.comment == "kubernetes service nodeports; NOTE: this must be the last rule in this chain"
    assert last.dst_type == "LOCAL" and last.target == "KUBE-NODEPORTS"
    masq = rs.rules("nat", "KUBE-SVC-NPX46M4PTMTKRN6Y")[0]
    assert masq.source == "10.244.0.0/16" and masq.negated("-s") and not masq.negated("-d")
    assert masq.destination == "10.96.0.1/32" and masq.protocol == "tcp" and masq.dport == 443
    ret = rs.rules("nat", "KUBE-POSTROUTING")[0]
    assert ret.opt("--mark").negated and ret.opt("--mark").module == "mark" and ret.target == "RETURN"
    snat = rs.rules("nat", "KUBE-POSTROUTING")[2]
    assert snat.target == "MASQUERADE" and snat.target_opts[0].name == "--random-fully"


# -- README rows --------------------------------------------------------------------------------------
def test_baseline_only_default_kubernetes_and_no_nodeports():
    a, b = load("baseline.node-a"), load("baseline.node-b")
    assert kipt.nodeport_entries(a) == [] and a.rules("nat", "KUBE-NODEPORTS") == []
    svc = [r for r in a.rules("nat", "KUBE-SERVICES") if r.target.startswith("KUBE-SVC-")]
    assert [(r.destination, r.dport, r.target) for r in svc] == [("10.96.0.1/32", 443, "KUBE-SVC-NPX46M4PTMTKRN6Y")]
    path = kipt.follow(a, "KUBE-SVC-NPX46M4PTMTKRN6Y")
    assert path.targets == {"KUBE-SEP-R5NYXNUM2FANRQPH": "10.250.0.1:6443"}
    assert rule_set(a) == rule_set(b)  # identical apart from timestamps


def test_clusterip_two_seps_same_on_both_nodes_and_no_nodeport():
    for node in ("node-a", "node-b"):
        rs = load(f"clusterip.{node}")
        path = kipt.follow(rs, "KUBE-SVC-VJZVBWHCVXV4TYUX")
        assert path.endpoints == {"10.244.0.11:8080", "10.244.1.11:8080"}
        first = [r for r in rs.rules("nat", "KUBE-SVC-VJZVBWHCVXV4TYUX") if r.has("--probability")]
        assert first[0].value("--mode", "statistic") == "random" and first[0].value("--probability") == "0.50000000000"
        assert kipt.nodeport_entries(rs) == []
    assert rule_set(load("clusterip.node-a")) == rule_set(load("clusterip.node-b"))


def test_nodeport_30080_ext_masquerades_then_svc_two_seps():
    for node in ("node-a", "node-b"):
        rs = load(f"nodeport.{node}")
        e = entry(rs, 30080)
        assert (e.protocol, e.service, e.target) == ("tcp", "fx/web-nodeport:http", "KUBE-EXT-HZNS6SEP7USYHEXZ")
        ext = rs.rules("nat", e.target)
        assert ext[0].target == "KUBE-MARK-MASQ" and ext[0].source is None and ext[0].dst_type is None  # unconditional
        path = kipt.follow(rs, e.target)
        assert path.chains[:2] == ["KUBE-EXT-HZNS6SEP7USYHEXZ", "KUBE-SVC-HZNS6SEP7USYHEXZ"]
        assert path.endpoints == {"10.244.0.12:8080", "10.244.1.12:8080"}


def test_etp_local_node_a_routes_external_traffic_to_the_local_sep_only():
    rs = load("nodeport-etp-local.node-a")
    e = entry(rs, 30081)
    ext = rs.rules("nat", e.target)
    assert ext[-1].target == "KUBE-SVL-TQP3YJD7IGCCMZUQ" and ext[-1].source is None
    assert kipt.follow(rs, "KUBE-SVL-TQP3YJD7IGCCMZUQ", seps_only=True).endpoints == {"10.244.0.13:8080"}
    masq = [r for r in ext if r.target == "KUBE-MARK-MASQ"]
    assert [r.value("--src-type", "addrtype") for r in masq] == ["LOCAL"]  # external sources are not masqueraded
    pod = next(r for r in ext if r.source == "10.244.0.0/16")
    assert pod.target == "KUBE-SVC-TQP3YJD7IGCCMZUQ"


def test_etp_local_node_b_has_no_svl_and_drops_in_filter():
    rs = load("nodeport-etp-local.node-b")
    assert rs.chain("nat", "KUBE-SVL-TQP3YJD7IGCCMZUQ") is None
    assert all(r.target != "KUBE-SVL-TQP3YJD7IGCCMZUQ" for r in rs.rules("nat", "KUBE-EXT-TQP3YJD7IGCCMZUQ"))
    drop = [b for b in kipt.blocked_services(rs) if b.reason == "no local endpoints"]
    assert [(b.service, b.port, b.verdict, b.rule.chain) for b in drop] == \
        [("fx/web-local:http", 30081, "DROP", "KUBE-EXTERNAL-SERVICES")]
    for node in ("node-a", "node-b"):  # no healthCheckNodePort: filter KUBE-NODEPORTS is empty
        assert load(f"nodeport-etp-local.{node}").rules("filter", "KUBE-NODEPORTS") == []


def test_etp_local_difference_between_nodes_is_four_lines():
    a, b = rule_set(load("nodeport-etp-local.node-a")), rule_set(load("nodeport-etp-local.node-b"))
    only_a, only_b = a - b, b - a
    assert {line for _, line in only_a} == {
        "-A KUBE-EXT-TQP3YJD7IGCCMZUQ -j KUBE-SVL-TQP3YJD7IGCCMZUQ",
        '-A KUBE-SVL-TQP3YJD7IGCCMZUQ -m comment --comment "fx/web-local:http -> 10.244.0.13:8080" '
        "-j KUBE-SEP-NFOJ4B7RMJEHPWJE"}
    assert [t for t, _ in only_b] == ["filter"] and "has no local endpoints" in next(iter(only_b))[1]
    chains_a = set(load("nodeport-etp-local.node-a").chain_names("nat"))
    assert chains_a - set(load("nodeport-etp-local.node-b").chain_names("nat")) == {"KUBE-SVL-TQP3YJD7IGCCMZUQ"}


def test_no_endpoints_rejects_in_filter_and_has_no_nat_chains():
    for node in ("node-a", "node-b"):
        rs = load(f"no-endpoints.{node}")
        rej = {(b.rule.chain, b.port, b.destination, b.verdict) for b in kipt.blocked_services(rs)
               if b.service == "fx/no-backend:http"}
        assert rej == {("KUBE-SERVICES", 80, "10.96.100.40/32", "REJECT"),
                       ("KUBE-EXTERNAL-SERVICES", 30082, None, "REJECT")}
        ext = next(b for b in kipt.blocked_services(rs) if b.port == 30082)
        assert ext.rule.dst_type == "LOCAL" and ext.reason == "no endpoints"
        assert not any("no-backend" in (r.comment or "") for r in rs.all_rules() if r.table == "nat")
        assert all(e.port != 30082 for e in kipt.nodeport_entries(rs))


def test_session_affinity_recent_checks_come_before_statistic():
    rs = load("session-affinity.node-a")
    rules = [r for r in rs.rules("nat", "KUBE-SVC-MEFJ3H5D7Z6X4GG5") if r.target.startswith("KUBE-SEP-")]
    kinds = ["recent" if r.has("--rcheck") else "statistic" if r.has("--probability") else "last" for r in rules]
    assert kinds == ["recent", "recent", "statistic", "last"]
    assert {r.value("--seconds") for r in rules if r.has("--rcheck")} == {"10800"}
    for sep in {r.target for r in rules}:
        dnat = next(r for r in rs.rules("nat", sep) if r.target == "DNAT")
        assert dnat.has("--set", "recent") and dnat.value("--name") == sep


def test_multi_port_two_independent_chain_sets():
    rs = load("multi-port.node-a")
    http, metrics = entry(rs, 30084), entry(rs, 30085)
    assert (http.service, metrics.service) == ("fx/multi:http", "fx/multi:metrics")
    assert kipt.follow(rs, http.target).endpoints == {"10.244.0.15:8080", "10.244.1.15:8080"}
    assert kipt.follow(rs, metrics.target).endpoints == {"10.244.0.15:9090", "10.244.1.15:9090"}
    assert http.target == f"KUBE-EXT-{kipt.chain_hash('fx/multi:http', 'tcp')}" == "KUBE-EXT-3GEGHRNKQFTI4OQR"


def test_udp_dns_like_one_chain_per_protocol():
    rs = load("udp-dns-like.node-a")
    svc = {(r.protocol, r.target) for r in rs.rules("nat", "KUBE-SERVICES") if r.destination == "10.96.0.10/32"}
    assert svc == {("udp", "KUBE-SVC-2LBEBWBC6XDWHY5Z"), ("tcp", "KUBE-SVC-JVSGOLTDUFRYE6O7")}
    for _, chain in svc:
        assert kipt.follow(rs, chain).endpoints == {"10.244.0.16:53", "10.244.1.16:53"}


def test_nodeport_addresses_last_rule_is_per_address():
    rs = load("nodeport-addresses.node-b")
    last = kipt.last_service_rule(rs)
    assert last.destination == "127.0.0.1/32" and last.dst_type is None and last.target == "KUBE-NODEPORTS"
    scope = kipt.nodeport_scope(rs)
    assert not scope.all_local and scope.addresses == ("127.0.0.1",)
    assert kipt.nodeport_scope(load("udp-dns-like.node-b")).all_local
    ext = [b for b in kipt.blocked_services(rs) if b.rule.chain == "KUBE-EXTERNAL-SERVICES"]
    assert {(b.port, b.verdict, b.rule.dst_type) for b in ext} == {(30081, "DROP", "LOCAL"), (30082, "REJECT", "LOCAL")}
    diff = rule_set(rs) ^ rule_set(load("udp-dns-like.node-b"))
    assert len(diff) == 2 and all("KUBE-NODEPORTS" in line and "last rule" in line for _, line in diff)


def test_kube_proxy_stopped_node_b_equals_its_older_dump_and_lacks_late_nodeport():
    a, b = load("kube-proxy-stopped.node-a"), load("kube-proxy-stopped.node-b")
    assert rule_set(b) == rule_set(load("udp-dns-like.node-b"))
    assert entry(a, 30083).service == "fx/late-nodeport:http"
    assert kipt.follow(a, entry(a, 30083).target).endpoints == {"10.244.0.17:8080", "10.244.1.17:8080"}
    assert all(e.port != 30083 for e in kipt.nodeport_entries(b))
    assert not any("10.96.100.70" in r.line or "late-nodeport" in r.line for r in b.all_rules())


# -- other versions and syntaxes ---------------------------------------------------------------------
def test_b1_1_pasted_dump_keeps_what_it_can():
    rs = sample("b1-1-k8s-1.4.nat.txt")
    assert rs.version == "v1.6.0" and rs.unparsed == ["...", "..."]
    cut = rs.rules("nat", "KUBE-NODEPORTS")[0]
    assert cut.comment == "default/front..." and cut.target is None
    assert rs.chain("nat", "DOCKER") is not None and rs.rules("nat", "DOCKER")[0].value("-i") == "docker0"
    out = next(r for r in rs.rules("nat", "OUTPUT") if r.target == "DOCKER")
    assert out.negated("-d") and out.destination == "127.0.0.0/8"


def test_b1_2_headerless_excerpt_goes_to_nat_and_keeps_old_masquerade():
    rs = sample("b1-2-k8s-1.7.nat.txt")
    assert set(rs.tables) == {"nat"}
    assert kipt.nodeport_scope(rs).all_local
    masq = [r for r in rs.rules("nat", "KUBE-SERVICES") if r.target == "KUBE-MARK-MASQ"]
    assert len(masq) == 2 and all(r.negated("-s") for r in masq)
    dns = next(r for r in rs.rules("nat", "KUBE-SERVICES") if r.protocol == "udp" and r.target.startswith("KUBE-SVC"))
    assert dns.target == f"KUBE-SVC-{kipt.chain_hash('kube-system/kube-dns:dns', 'udp')}"
    affinity = rs.rules("nat", "KUBE-SVC-NPX46M4PTMTKRN6Y")[0]
    assert affinity.value("--seconds", "recent") == "10800" and affinity.has("--rsource")


def test_b1_3_unnamed_port_comments_and_endpoint_comments():
    rs = sample("b1-3-k8s-1.24.nat.txt")
    api = [r.comment for r in rs.rules("nat", "KUBE-SVC-NPX46M4PTMTKRN6Y") if r.target.startswith("KUBE-SEP-")]
    assert api[0] == "default/kubernetes:https -> 10.105.10.145:6443"
    assert f"KUBE-SVC-{kipt.chain_hash('kube-system/sealed-secrets-controller', 'tcp')}" in rs.chain_names("nat")


def test_b1_4_kind_nodeport_goes_through_ext():
    rs = sample("b1-4-k8s-1.26-kind.nat.txt")
    e = entry(rs, 31964)
    assert (e.service, e.target) == ("default/nodeport-service", "KUBE-EXT-QATUYZLPU4I4HE4S")
    assert e.target == f"KUBE-EXT-{kipt.chain_hash('default/nodeport-service', 'tcp')}"
    dnat = next(r for r in rs.rules("nat", "KUBE-SEP-6E7XQMQ4RAYOWTTM") if r.target == "DNAT")
    assert dnat.to_destination == "10.244.0.3:53" and dnat.protocol == "udp"


def test_syntax_variants_counters_old_negation_escapes_long_options():
    rs = sample("syntax-variants.txt")
    assert rs.chain("nat", "PREROUTING").policy == "ACCEPT"
    assert rs.warnings == ["# iptables-save -c output with an old-syntax negation, an escaped quote and a counter prefix",
                           "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them"]
    pre = rs.rules("nat", "PREROUTING")[0]
    assert pre.line.startswith("-A PREROUTING") and pre.target == "KUBE-SERVICES"
    old, long = rs.rules("nat", "KUBE-SERVICES")
    assert old.negated("-s") and old.source == "10.244.0.0/16" and old.comment == 'say "hi" there'
    assert (long.destination, long.protocol, long.dport, long.target) == \
        ("10.96.0.10/32", "udp", 53, "KUBE-SVC-TCOU7JCQXEZGVUNU")


def test_kubelet_chains_are_not_a_proxy_mode_and_ipvs_is_recognised():
    kubelet = sample("kubelet-only.iptables-save.txt")
    assert kipt.kube_rule_count(kubelet) == 7 and kipt.proxy_mode(kubelet) is None
    assert kipt.nodeport_scope(kubelet) is None
    ipvs = sample("ipvs-mode.nat.txt")
    assert kipt.proxy_mode(ipvs) == "ipvs" and kipt.nodeport_entries(ipvs) == []
    assert kipt.proxy_mode(ipt.parse("")) is None


def test_parse_rule_rejects_non_rules():
    assert ipt.parse_rule(":KUBE-SERVICES - [0:0]") is None
    assert ipt.parse_rule("-I INPUT 1 -j ACCEPT").target == "ACCEPT"
