"""The lab's dataplane: generated rules match real kube-proxy 1.26, and real traffic flows.

The first part is pure (no root): kube-proxy chain hashes and whole rule sets regenerated from
the objects of tests/fixtures/kube-proxy-1.26 must equal the real captures. The second part
builds one 3-node lab and sends packets through it: pod to pod over VXLAN, NodePorts from the
internet, ClusterIPs, DNS, a hostPort and externalTrafficPolicy: Local.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from k8snetdoctor.lab import build, kubeproxy_rules as K, netns, portmap, procs
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab import traffic as T
from k8snetdoctor.lab.names import Names
from k8snetdoctor.lab.rules import BUILTINS, Ruleset
from k8snetdoctor.lab.view import cluster_view
from support import KP126, kp_view

# -- the fixture cluster, completed with what kube-proxy also read ------------------------------
KUBERNETES_SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
                  "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}
KUBERNETES_SLICE = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                    "metadata": {"name": "kubernetes", "namespace": "default",
                                 "labels": {"kubernetes.io/service-name": "kubernetes"}},
                    "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
                    "endpoints": [{"addresses": ["10.250.0.1"], "conditions": {"ready": True}}]}


def kube_proxy_cm(extra: str = "") -> dict:
    """Flags F0 of the capture, as a kube-proxy ConfigMap."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "data": {"config.conf": f"mode: iptables\nclusterCIDR: 10.244.0.0/16\n{extra}"}}


def fixture_view(without: tuple[str, ...] = (), cm_extra: str = ""):
    view = kp_view(KUBERNETES_SVC, KUBERNETES_SLICE, kube_proxy_cm(cm_extra))
    keep = lambda o: (o.get("metadata", {}).get("labels") or {}).get("kubernetes.io/service-name",  # noqa: E731
                                                                      o["metadata"]["name"]) not in without
    view.services = [s for s in view.services if keep(s)]
    view.endpointSlices = [e for e in view.endpointSlices if keep(e)]
    return view


def dump(name: str) -> Ruleset:
    return Ruleset.parse((KP126 / f"{name}.iptables-save.txt").read_text())


# -- pure -------------------------------------------------------------------------------------
@pytest.mark.parametrize("spn,proto,chain", [
    ("default/kubernetes:https", "tcp", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
    ("fx/web-nodeport:http", "tcp", "KUBE-SVC-HZNS6SEP7USYHEXZ"),
    ("fx/web-clusterip:http", "tcp", "KUBE-SVC-VJZVBWHCVXV4TYUX"),
    ("fx/dns-like:dns", "udp", "KUBE-SVC-2LBEBWBC6XDWHY5Z"),
    ("fx/dns-like:dns-tcp", "tcp", "KUBE-SVC-JVSGOLTDUFRYE6O7"),
    ("fx/multi:metrics", "tcp", "KUBE-SVC-AIXH4TCPGUGBBBNP"),
])
def test_service_chain_hash_matches_kube_proxy(spn, proto, chain):
    assert K.svc_chain(spn, proto) == chain
    assert K.ext_chain(spn, proto) == chain.replace("SVC", "EXT")
    assert K.svl_chain("fx/web-local:http", "tcp") == "KUBE-SVL-TQP3YJD7IGCCMZUQ"


def test_endpoint_chain_hash_matches_kube_proxy():
    assert K.sep_chain("default/kubernetes:https", "tcp", "10.250.0.1:6443") == "KUBE-SEP-R5NYXNUM2FANRQPH"
    assert K.sep_chain("fx/web-local:http", "tcp", "10.244.0.13:8080") == "KUBE-SEP-NFOJ4B7RMJEHPWJE"
    assert K.sep_chain("fx/dns-like:dns", "udp", "10.244.1.16:53") == "KUBE-SEP-L5BRE4WL3LHOH6EU"


def test_probability_is_printed_as_iptables_save_does():
    assert K.probability(2) == "0.50000000000"
    assert K.probability(3) == "0.33333333349"
    assert K.probability(4) == "0.25000000000"


@pytest.mark.parametrize("node,dump_name,without,cm_extra", [
    ("node-a", "kube-proxy-stopped.node-a", (), ""),                     # every scenario, ETP local endpoint here
    ("node-b", "udp-dns-like.node-b", ("late-nodeport",), ""),           # no local endpoint for web-local
    ("node-b", "nodeport-addresses.node-b", ("late-nodeport",), "nodePortAddresses: [127.0.0.0/8]\n"),
])
def test_generated_rules_equal_the_real_kube_proxy_dump(node, dump_name, without, cm_extra):
    gen, real = K.ruleset(fixture_view(without, cm_extra), node), dump(dump_name)
    for table in ("mangle", "filter", "nat"):
        assert sorted(gen.chains(table)) == sorted(real.chains(table)), table
        assert sorted(gen.rule_lines(table)) == sorted(real.rule_lines(table)), table
        for chain in BUILTINS[table]:   # jumps from built-in chains: same order, not just same set
            assert gen.table(table).chain_rules(chain) == real.table(table).chain_rules(chain), (table, chain)
    last = [r for r in gen.rule_lines("nat") if r.startswith("-A KUBE-SERVICES ")][-1]
    assert "-j KUBE-NODEPORTS" in last and "must be the last rule" in last


def test_generated_text_is_well_formed_restore_input():
    """Every table commits, every rule's chain is declared, every jump goes to a declared chain."""
    text = K.render(fixture_view(), "node-a")
    targets = {"ACCEPT", "DROP", "RETURN", "REJECT", "MARK", "MASQUERADE", "DNAT", "SNAT"}
    table, declared = None, set()
    for line in text.splitlines():
        if line.startswith("*"):
            assert table is None
            table, declared = line[1:], set()
        elif line == "COMMIT":
            table = None
        elif line.startswith(":"):
            declared.add(line[1:].split()[0])
        elif line.startswith("-A "):
            words = line.split()
            assert words[1] in declared, line
            if "-j" in words:
                assert words[words.index("-j") + 1] in declared | targets, line
            assert line.count('"') % 2 == 0, line
    assert table is None
    assert Ruleset.parse(text).rule_lines() == K.ruleset(fixture_view(), "node-a").rule_lines()


def test_resync_from_a_stale_view_replaces_only_kube_proxy_rules():
    lab = S.make("unit", 3)
    view = cluster_view(lab)
    full = build.node_ruleset(view, lab, "node-1")
    stale = cluster_view(lab)
    stale.services = [s for s in stale.services if s["metadata"]["name"] != "echo-nodeport"]
    resynced = Ruleset.parse(full.render()).replace_owned(K.owns, K.ruleset(stale, "node-1"))
    lines = resynced.rule_lines()
    assert not any("30080" in r for r in lines)
    assert any("30081" in r for r in lines)
    assert resynced.table("filter").chain_rules("INPUT") == full.table("filter").chain_rules("INPUT")
    assert [r for r in lines if "LAB-SG" in r or "FLANNEL" in r or "CNI-" in r] == \
           [r for r in full.rule_lines() if "LAB-SG" in r or "FLANNEL" in r or "CNI-" in r]


def test_lab_view_agrees_with_the_spec():
    lab = S.make("unit", 4)
    view = cluster_view(lab)
    assert view.node_names() == ["node-0", "node-1", "node-2", "node-3"]
    for n in lab.nodes:
        fl = view.flannel(n.name)
        assert (fl.backend, fl.vni, fl.vtep_mac, fl.public_ip) == ("vxlan", 1, n.vtep_mac, n.ip)
        assert view.internal_ip(n.name) == n.ip and view.pod_cidr(n.name) == n.pod_cidr and view.is_ready(n.name)
    assert view.node("node-0")["spec"]["taints"] == [S.CP_TAINT]
    assert "taints" not in view.node("node-1")["spec"]
    assert view.kube_proxy_config()["mode"] == "iptables" and view.cluster_cidr() == "10.244.0.0/16"
    assert "Corefile" in view.config_map("kube-system", "coredns")["data"]
    ports = {sp.ref: sp for sp in view.service_ports()}
    assert ports["default/echo-local:http"].external_traffic_policy == "Local"
    assert ports["default/echo-nodeport:http"].node_port == 30080
    eps = {e.node for e in view.endpoints(ports["default/echo:http"])}
    assert eps == {"node-1", "node-2", "node-3"}
    assert [e.node for e in view.endpoints(ports["default/echo-local:http"])] == ["node-1"]
    assert [e.address for e in view.endpoints(ports["default/kubernetes:https"])] == [lab.control_plane.ip]
    hp = [p for p in view.pods if p["metadata"]["name"] == "echo-hostport"][0]
    assert hp["spec"]["containers"][0]["ports"][0]["hostPort"] == 8081
    assert portmap.mappings(view, "node-1")[0].host_port == 8081 and not portmap.mappings(view, "node-2")


def test_names_fit_the_kernel_limits():
    lab = S.make("abcdefghijkl", S.MAX_NODES)
    ifnames = ["br0", "router", "cni0", "flannel.1"] + [n.name for n in lab.nodes] \
        + [build.veth_name(p) for p in lab.pods]
    assert max(map(len, ifnames)) <= 15
    assert len({build.veth_name(p) for p in lab.pods}) == len(lab.pods)
    assert portmap.dn_chain("cbr0", "x" * 64).startswith("CNI-DN-") and len(portmap.dn_chain("cbr0", "x")) == 28
    assert Names("a").owns("ndlab-a-node-1") and not Names("a").owns("ndlab-ab-node-1")
    with pytest.raises(ValueError):
        Names("Bad_Name")


# -- root: rules load ----------------------------------------------------------------------------
@pytest.mark.root
def test_generated_rules_pass_iptables_restore_test(lab_run_id):
    ns = f"ndlab-{lab_run_id}x-syntax"
    netns.add_netns([ns])
    try:
        netns.iptables_restore(ns, K.render(fixture_view(), "node-a"), test=True)
        lab = S.make("unit", 3)
        netns.iptables_restore(ns, build.node_ruleset(cluster_view(lab), lab, "node-1").render(), test=True)
    finally:
        netns.delete_netns([ns])


# -- root: one 3-node lab ----------------------------------------------------------------------
def tx_packets(ns: str, dev: str = "flannel.1") -> int:
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", dev], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["packets"]


@pytest.mark.root
def test_lab_is_up_and_consistent(lab):
    st = lab.status()
    assert st["healthy"], st
    assert {p["role"] for p in st["processes"]} >= {"pod", "coredns", "upstream-dns", "kubelet", "kube-apiserver"}
    for n in lab.spec.nodes:    # the view's VtepMAC is the real one, and flannel.1 is what flanneld makes
        link = json.loads(subprocess.run(["ip", "-n", lab.node_ns(n.name), "-d", "-j", "link", "show", "flannel.1"],
                                         capture_output=True, text=True, check=True).stdout)[0]
        assert link["address"] == lab.view().flannel(n.name).vtep_mac
        info = link["linkinfo"]["info_data"]
        assert (info["id"], info["port"], info["local"], info["learning"], link["mtu"]) == \
               (1, 8472, n.ip, False, 1450)
        assert netns.read_sysctl(lab.node_ns(n.name), "net.ipv4.ip_forward") == "1"


@pytest.mark.root
def test_loaded_rules_read_back_exactly_as_generated(lab):
    for node in lab.spec.node_names:
        real = Ruleset.parse(netns.iptables_save(lab.node_ns(node)))
        gen = lab.node_ruleset(node)
        for table in ("mangle", "filter", "nat"):
            assert real.rule_lines(table) == gen.rule_lines(table), (node, table)


@pytest.mark.root
def test_pod_to_pod_across_nodes_goes_over_vxlan(lab):
    src, dst = lab.spec.pod("echo-node-1"), lab.spec.pod("echo-node-2")
    sender = lab.node_ns(src.node)
    before = tx_packets(sender)
    r = T.http_get(lab.pod_ns(src.name), dst.ip, S.ECHO_PORT)
    assert r.ok and r.json()["pod"] == dst.name and r.json()["clientIP"] == src.ip
    assert tx_packets(sender) > before
    assert T.http_get(lab.pod_ns("toolbox-node-0"), dst.ip, S.ECHO_PORT, "/healthz").body == "ok\n"


@pytest.mark.root
def test_nodeport_answers_on_every_node_from_outside(lab):
    for n in lab.spec.nodes:
        r = T.http_get(lab.external_ns, n.ip, S.NODEPORT_CLUSTER)
        assert r.ok and r.json()["pod"].startswith("echo-node-"), (n.name, r)


@pytest.mark.root
def test_clusterip_answers_from_a_pod_on_every_node(lab):
    for n in lab.spec.nodes:
        r = T.http_get(lab.pod_ns(f"toolbox-{n.name}"), "10.96.100.10", 80)
        assert r.ok and r.json()["pod"].startswith("echo-node-"), (n.name, r)
    r = T.http_get(lab.pod_ns("toolbox-node-1"), S.KUBERNETES_SVC_IP, 443)
    assert r.ok and r.json()["role"] == "kube-apiserver"


@pytest.mark.root
def test_dns_from_a_pod_on_every_node(lab):
    want = {"kubernetes.default.svc.cluster.local": S.KUBERNETES_SVC_IP,
            "echo.default.svc.cluster.local": "10.96.100.10", "example.com": S.EXAMPLE_IP}
    for n in lab.spec.nodes:
        for name, ip in want.items():
            r = T.dns_query(lab.pod_ns(f"toolbox-{n.name}"), S.KUBE_DNS_IP, name)
            assert (r["rcode"], r["answers"]) == ("NOERROR", [ip]), (n.name, name, r)
    r = T.dns_query(lab.pod_ns("toolbox-node-0"), S.KUBE_DNS_IP, "kube-dns.kube-system.svc.cluster.local", tcp=True)
    assert r["answers"] == [S.KUBE_DNS_IP]
    assert T.dns_query(lab.pod_ns("toolbox-node-0"), S.KUBE_DNS_IP, "nope.default.svc.cluster.local")["rcode"] \
        == "NXDOMAIN"
    resolv = lab.pod_resolv_path("toolbox-node-1").read_text()
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "nameserver 10.96.0.10" in resolv and "ndots:5" in resolv


@pytest.mark.root
def test_hostport_answers_on_its_node_only(lab):
    hp = lab.spec.pod("echo-hostport")
    other = next(n for n in lab.spec.nodes if n.name != hp.node)
    r = T.http_get(lab.node_ns(other.name), lab.node_ip(hp.node), S.HOST_PORT)
    assert r.ok and r.json()["pod"] == "echo-hostport"
    assert T.tcp_connect(lab.node_ns(hp.node), other.ip, S.HOST_PORT) == "refused"


@pytest.mark.root
def test_etp_local_nodeport_answers_only_where_the_endpoint_is(lab):
    hp = lab.spec.pod("echo-hostport")
    for n in lab.spec.nodes:
        r = T.http_get(lab.external_ns, n.ip, S.NODEPORT_LOCAL, timeout=1.5)
        if n.name == hp.node:
            assert r.ok and r.json()["clientIP"] == S.EXTERNAL_IP, r   # client IP preserved
        else:
            assert not r.ok and r.error == "timeout", (n.name, r)     # KUBE-EXTERNAL-SERVICES DROP


@pytest.mark.root
def test_security_group_and_pod_egress(lab):
    node = lab.spec.node("node-1")
    assert T.tcp_connect(lab.external_ns, node.ip, S.KUBELET_PORT, timeout=1) == "timeout"
    assert T.tcp_connect(lab.node_ns("node-2"), node.ip, S.KUBELET_PORT) == "open"
    assert T.tcp_connect(lab.external_ns, lab.spec.control_plane.ip, S.APISERVER_PORT) == "open"
    r = T.http_get(lab.pod_ns("toolbox-node-1"), S.EXAMPLE_IP, 80)
    assert r.ok and r.json()["clientIP"] == node.ip      # flannel's masquerade to the node address


@pytest.mark.root
def test_host_roots_hold_cni_config_and_binaries(lab):
    for n in lab.spec.nodes:
        root = lab.host_root(n.name)
        conf = json.loads((root / "etc/cni/net.d/10-flannel.conflist").read_text())
        assert [p["type"] for p in conf["plugins"]] == ["flannel", "portmap"]
        assert sorted(p.name for p in (root / "opt/cni/bin").iterdir()) == \
               ["bridge", "flannel", "host-local", "loopback", "portmap"]


@pytest.mark.root
def test_reversible_changes_faults_will_build_on(lab):
    """A stale kube-proxy on one node, a stopped kubelet, a security-group DROP: each undone."""
    from k8snetdoctor.lab import sg

    node, ns = lab.spec.node("node-2"), lab.node_ns("node-2")
    stale = lab.view()
    stale.services = [s for s in stale.services if s["metadata"]["name"] != "echo-nodeport"]
    try:
        lab.sync_kube_proxy("node-2", stale)
        assert T.tcp_connect(lab.external_ns, node.ip, S.NODEPORT_CLUSTER) == "refused"
        assert T.http_get(lab.external_ns, lab.node_ip("node-1"), S.NODEPORT_CLUSTER).ok
    finally:
        lab.sync_kube_proxy("node-2")
    assert T.http_get(lab.external_ns, node.ip, S.NODEPORT_CLUSTER).ok
    assert Ruleset.parse(netns.iptables_save(ns)).rule_lines() == lab.node_ruleset("node-2").rule_lines()

    try:
        lab.stop_process("kubelet-node-2")
        assert T.tcp_connect(lab.node_ns("node-1"), node.ip, S.KUBELET_PORT) == "refused"
    finally:
        lab.start_process("kubelet-node-2")
    assert T.tcp_connect(lab.node_ns("node-1"), node.ip, S.KUBELET_PORT) == "open"

    drop = sg.rule_drop_from(lab.node_ip("node-1"), "udp", S.VXLAN_PORT)
    src = lab.pod_ns("toolbox-node-1")
    try:
        netns.iptables(ns, "-I", sg.CHAIN, "1", *drop)
        assert T.http_get(src, lab.spec.pod("echo-node-2").ip, S.ECHO_PORT, timeout=1).error == "timeout"
    finally:
        netns.iptables(ns, "-D", sg.CHAIN, *drop)
    assert T.http_get(src, lab.spec.pod("echo-node-2").ip, S.ECHO_PORT).ok
    assert lab.status()["healthy"]


# -- root: a second lab, coexistence and teardown -------------------------------------------------
@pytest.mark.root
def test_second_lab_coexists_and_down_removes_exactly_it(lab, lab_run_id):
    from k8snetdoctor.lab.lab import Lab, down, up

    other = up(lab_run_id + "b", nodes=2)
    try:
        with pytest.raises(netns.LabError, match="already exists"):
            up(other.name, nodes=2)                              # refuses, and leaves the lab alone
        assert T.http_get(other.external_ns, other.node_ip("node-0"), S.NODEPORT_CLUSTER).ok
        assert T.http_get(lab.external_ns, lab.node_ip("node-0"), S.NODEPORT_CLUSTER).ok
        recs = list(other.state.processes)
        namespaces = list(other.state.namespaces)
        res = Lab.load(other.name).down()
    finally:
        down(other.name)
    assert res["namespacesLeft"] == [] and res["processesStuck"] == []
    assert not set(namespaces) & netns.list_netns()
    assert not [r for r in recs if procs.alive(r)]
    assert not other.names.state_file.exists() and not other.names.state_dir.exists()
    assert all(not Path(p).exists() for p in other.state.paths)
    assert down(other.name)["namespacesDeleted"] == 0          # idempotent
    assert lab.status()["healthy"]                               # the first lab is untouched
    assert T.http_get(lab.external_ns, lab.node_ip("node-1"), S.NODEPORT_CLUSTER).ok


@pytest.mark.root
def test_down_cleans_up_after_a_crashed_up(lab_run_id, monkeypatch):
    from k8snetdoctor.lab.lab import Lab, up

    name = lab_run_id + "c"

    def crash(*_a, **_k):
        raise RuntimeError("simulated crash after the namespaces and one process exist")

    real_start = build.start_processes

    def start_then_crash(lab_spec, names, state):
        procs.start(state, names.external, "upstream-dns", "upstream-dns", build.dns.upstream_argv(),
                    ["udp:53"], names.log_dir)
        crash()

    monkeypatch.setattr(build, "start_processes", start_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        up(name, nodes=2, cleanup_on_error=False)
    monkeypatch.setattr(build, "start_processes", real_start)
    lab = Lab.load(name)
    assert lab.state.status == "failed" and lab.state.processes
    assert set(lab.state.namespaces) <= netns.list_netns()
    pid = lab.state.processes[0].pid
    res = lab.down()
    assert res["namespacesLeft"] == [] and not set(lab.state.namespaces) & netns.list_netns()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and procs.start_time(pid) is not None:
        time.sleep(0.05)
    assert procs.start_time(pid) is None
    assert not os.path.exists(lab.names.state_file)


@pytest.mark.root
def test_down_finds_a_process_started_but_not_yet_recorded(lab_run_id, monkeypatch):
    """A crash between fork and writing the PID: the intent record (argv, netns) still finds it."""
    from k8snetdoctor.lab.lab import Lab, up

    name, real, calls = lab_run_id + "d", procs.start_time, []

    def crash_on_third(pid):
        calls.append(pid)
        if len(calls) == 3:
            raise RuntimeError("simulated crash before the PID was written")
        return real(pid)

    monkeypatch.setattr(procs, "start_time", crash_on_third)
    with pytest.raises(RuntimeError, match="simulated crash"):
        up(name, nodes=2, cleanup_on_error=False)
    monkeypatch.setattr(procs, "start_time", real)
    lab = Lab.load(name)
    assert lab.state.processes[-1].pid == 0          # recorded as intent only
    orphan = calls[-1]
    assert lab.down()["unrecordedProcesses"] == {}
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and procs.start_time(orphan) is not None:
        time.sleep(0.05)
    assert procs.start_time(orphan) is None
