"""The fault catalogue: each behaviour fault breaks exactly what it claims, shown with real
packets and DNS queries, and everything works again after `clear`.

Config faults are tested through the rules in test_check_lab.py; the guard test below makes
sure every catalogue entry is covered by exactly one of the two parametrisations, so a fault
cannot be added without its test. The pure part (defaults, validation, view overrides) needs
no root.
"""
from __future__ import annotations

from typing import Callable

import pytest

from k8snetdoctor.errors import UsageProblem
from k8snetdoctor.lab import faults, faults_view
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab import traffic as T
from k8snetdoctor.lab.view import cluster_view
from k8snetdoctor.registry import all_rules

OK, TIMEOUT = "ok", "timeout"
FAST = 1.0          # seconds: a dropped packet is a timeout, so keep them short


# -- what to observe for each behaviour fault: (observe(lab, record) -> outcomes, broken, healthy) --
def reach(ns: str, ip: str, port: int) -> str:
    """ok when a TCP SYN got any answer (SYN-ACK or RST): the path works, whatever listens."""
    r = T.tcp_connect(ns, ip, port, timeout=FAST)
    return OK if r in ("open", "refused") else r


def http(ns: str, ip: str, port: int) -> str:
    r = T.http_get(ns, ip, port, timeout=FAST)
    return OK if r.ok else (r.error or f"HTTP {r.status}")


def resolve(ns: str, name: str, server: str = S.KUBE_DNS_IP) -> str:
    r = T.dns_query(ns, server, name, timeout=FAST)
    return OK if r["rcode"] == "NOERROR" and r["answers"] else (r["error"] or r["rcode"])


def observe_vxlan(lab, rec):
    a, b = rec["node"], rec["peer"]
    c = next(n for n in lab.spec.node_names if n not in (a, b))
    pod = lambda node: lab.pod_ns(f"toolbox-{node}")                      # noqa: E731
    ip = lambda node: lab.spec.pod(f"toolbox-{node}").ip                  # noqa: E731
    return {"A->B": reach(pod(a), ip(b), S.ECHO_PORT), "B->A": reach(pod(b), ip(a), S.ECHO_PORT),
            "B->C": reach(pod(b), ip(c), S.ECHO_PORT), "A->C": reach(pod(a), ip(c), S.ECHO_PORT),
            "node A->B": reach(lab.node_ns(a), lab.node_ip(b), S.KUBELET_PORT)}


def observe_sg_closed(lab, rec):
    x, other = rec["node"], next(n for n in lab.spec.node_names if n != rec["node"])
    return {"outside->X": http(lab.external_ns, lab.node_ip(x), S.NODEPORT_CLUSTER),
            "outside->other": http(lab.external_ns, lab.node_ip(other), S.NODEPORT_CLUSTER),
            "VPC->X": http(lab.node_ns(other), lab.node_ip(x), S.NODEPORT_CLUSTER)}


def observe_etp_local(lab, rec):
    served = next(p.node for p in lab.spec.pods if p.labels.get("app") == "echo" and p.node != rec["node"])
    return {"outside->X": http(lab.external_ns, lab.node_ip(rec["node"]), S.NODEPORT_CLUSTER),
            "outside->served": http(lab.external_ns, lab.node_ip(served), S.NODEPORT_CLUSTER)}


def observe_upstream(lab, rec):
    pod = lab.pod_ns("toolbox-node-0")
    return {"cluster name": resolve(pod, "kubernetes.default.svc.cluster.local"),
            "external name": resolve(pod, "example.com"),
            "node->upstream": resolve(lab.node_ns(rec["node"]), "example.com", S.UPSTREAM_DNS_IP)}


def observe_unreachable_from(lab, rec):
    other = next(n for n in lab.spec.node_names if n != rec["node"])
    return {"from X": resolve(lab.pod_ns(f"toolbox-{rec['node']}"), "echo.default.svc.cluster.local"),
            "from other": resolve(lab.pod_ns(f"toolbox-{other}"), "echo.default.svc.cluster.local")}


def observe_loop(lab, rec):
    pod = lab.pod_ns("toolbox-node-0")
    resolv = (lab.host_root(rec["node"]) / "etc/resolv.conf").read_text()
    return {"cluster name": resolve(pod, "kubernetes.default.svc.cluster.local"),
            "external name": resolve(pod, "example.com"),
            "node resolv.conf": "stub" if "nameserver 127.0.0.53" in resolv else "upstream"}


def observe_kubelet_closed(lab, rec):
    other = next(n.name for n in lab.spec.nodes if n.name != rec["node"] and not n.control_plane)
    x = lab.node_ip(rec["node"])
    return {"control plane->X": reach(lab.node_ns(lab.spec.control_plane.name), x, S.KUBELET_PORT),
            "other->X": reach(lab.node_ns(other), x, S.KUBELET_PORT)}


def observe_kubelet_exposed(lab, rec):
    other = next(n for n in lab.spec.node_names if n != rec["node"])
    return {"internet->X": reach(lab.external_ns, lab.node_ip(rec["node"]), S.KUBELET_PORT),
            "internet->other": reach(lab.external_ns, lab.node_ip(other), S.KUBELET_PORT)}


Observe = Callable[..., dict[str, str]]
BEHAVIOUR: dict[str, tuple[Observe, dict[str, str], dict[str, str]]] = {
    "vxlan-blocked": (observe_vxlan,
                      {"A->B": TIMEOUT, "B->A": TIMEOUT, "B->C": OK, "A->C": OK, "node A->B": OK},
                      {"A->B": OK, "B->A": OK, "B->C": OK, "A->C": OK, "node A->B": OK}),
    "sg-closed": (observe_sg_closed, {"outside->X": TIMEOUT, "outside->other": OK, "VPC->X": OK},
                  {"outside->X": OK, "outside->other": OK, "VPC->X": OK}),
    "etp-local-no-endpoint": (observe_etp_local, {"outside->X": TIMEOUT, "outside->served": OK},
                              {"outside->X": OK, "outside->served": OK}),
    "dns-upstream-down": (observe_upstream, {"cluster name": OK, "external name": TIMEOUT, "node->upstream": OK},
                          {"cluster name": OK, "external name": OK, "node->upstream": OK}),
    "coredns-unreachable-from": (observe_unreachable_from, {"from X": TIMEOUT, "from other": OK},
                                 {"from X": OK, "from other": OK}),
    "coredns-loop": (observe_loop, {"cluster name": OK, "external name": "REFUSED", "node resolv.conf": "stub"},
                     {"cluster name": OK, "external name": OK, "node resolv.conf": "upstream"}),
    "kubelet-port-closed": (observe_kubelet_closed, {"control plane->X": TIMEOUT, "other->X": OK},
                            {"control plane->X": OK, "other->X": OK}),
    "kubelet-exposed": (observe_kubelet_exposed, {"internet->X": OK, "internet->other": TIMEOUT},
                        {"internet->X": TIMEOUT, "internet->other": TIMEOUT}),
}
BEHAVIOUR_FAULTS = [f for f in faults.CATALOGUE if f.name in BEHAVIOUR]


# -- pure: the catalogue and its guard ---------------------------------------------------------------
def test_every_fault_is_tested_by_exactly_one_parametrisation():
    from test_check_lab import CONFIG_FAULTS

    config, behaviour = {f.name for f in CONFIG_FAULTS}, set(BEHAVIOUR)
    names = [f.name for f in faults.CATALOGUE]
    assert len(names) == len(set(names)), "fault names must be unique"
    assert not config & behaviour, f"tested twice: {config & behaviour}"
    assert config | behaviour == set(names), f"untested: {set(names) - config - behaviour}"
    assert all(f.kind == "behaviour" for f in BEHAVIOUR_FAULTS), "a behaviour test for a config fault"


def test_config_faults_name_registered_rules_and_behaviour_faults_none():
    known = {r.id for r in all_rules()}
    for f in faults.CATALOGUE:
        assert f.kind in ("config", "behaviour") and f.fm and all(fm.startswith("FM-") for fm in f.fm), f.name
        assert f.description and "\n" not in f.description
        if f.kind == "config":
            assert f.rules and set(f.rules) <= known, f"{f.name}: unknown rules {set(f.rules) - known}"
            fms = {fm for r in all_rules() if r.id in f.rules for fm in r.failureModes}
            assert fms & set(f.fm), f"{f.name}: its rules recognise none of {f.fm}"
        else:
            assert not f.rules, f"{f.name}: behaviour faults are judged by probing, not by rules"


@pytest.mark.parametrize("nodes,fault,given,want", [
    (3, "vxlan-blocked", (None, None), ("node-1", "node-2")),
    (2, "vxlan-blocked", (None, None), ("node-1", "node-0")),
    (3, "vxlan-blocked", ("node-0", None), ("node-0", "node-1")),
    (3, "sg-closed", (None, None), ("node-1", None)),
    (3, "sg-closed", (None, "node-2"), ("node-1", "node-2")),
    (3, "portmap-missing", (None, None), ("node-1", None)),
    (3, "dns-upstream-down", (None, None), ("node-2", None)),
    (3, "coredns-unreachable-from", (None, None), ("node-1", None)),
    (2, "coredns-unreachable-from", (None, None), ("node-0", None)),
    (4, "kubelet-port-closed", ("node-3", None), ("node-3", None)),
])
def test_targets_default_to_the_usual_nodes(nodes, fault, given, want):
    assert faults.targets(faults.get(fault), S.make("unit", nodes), *given) == want


@pytest.mark.parametrize("fault,given,message", [
    ("nope", (None, None), "no fault 'nope'"),
    ("ip-forward-off", ("node-7", None), "no node 'node-7'"),
    ("ip-forward-off", (None, "node-2"), "takes no --peer"),
    ("vxlan-blocked", ("node-1", "node-1"), "--peer must be a node other than --node"),
    ("portmap-missing", ("node-2", None), "a node running a pod with a hostPort"),
    ("kubelet-port-closed", ("node-0", None), "a worker"),
    ("coredns-loop", ("node-1", None), "the node CoreDNS runs on: node-2"),
])
def test_targets_refuse_what_the_fault_cannot_do(fault, given, message):
    with pytest.raises(UsageProblem, match=message):
        faults.targets(faults.get(fault), S.make("unit", 3), *given)


def test_view_overrides_add_remove_and_merge():
    view = cluster_view(S.make("unit", 3))
    faults_view.apply(view, [
        faults_view.merge("Node", "node-1", {"spec": {"podCIDR": None}, "metadata": {"labels": {"x": "y"}}}),
        faults_view.remove("Service", "echo", "default"),
        faults_view.add({"kind": "Service", "metadata": {"name": "new", "namespace": "default"}, "spec": {}}),
        faults_view.remove("Service", "gone-already", "default"),
    ])
    assert view.pod_cidr("node-1") == "10.244.1.0/24"          # podCIDRs still lists it: merge is per key
    assert view.node("node-1")["metadata"]["labels"]["x"] == "y"
    assert "kubernetes.io/hostname" in view.node("node-1")["metadata"]["labels"]
    assert {s["metadata"]["name"] for s in view.services} >= {"new"} and "echo" not in \
        {s["metadata"]["name"] for s in view.services}
    assert faults_view.merge_patch({"a": [1, 2], "b": 1}, {"a": [3], "b": None}) == {"a": [3]}


@pytest.mark.parametrize("args", [("lab", "status"), ("lab", "fault", "ip-forward-off"), ("check", "--lab")])
def test_lab_cli_without_root_is_one_line_exit_3(monkeypatch, capsys, args):
    from k8snetdoctor.cli import cli, main
    from k8snetdoctor.lab_cli import lab

    if "lab" not in cli.commands:        # until cli.py registers the group itself
        cli.add_command(lab)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    err = capsys.readouterr().err
    assert exc.value.code == 3 and len(err.strip().splitlines()) == 1 and "needs root" in err, err


# -- root: each behaviour fault breaks what it says, and clear mends it ---------------------------------
@pytest.fixture(scope="module")
def lab(lab_run_id):
    from test_check_lab import own_lab

    yield from own_lab(lab_run_id + "f")


@pytest.mark.root
@pytest.mark.parametrize("fault", BEHAVIOUR_FAULTS, ids=lambda f: f.name)
def test_behaviour_fault_breaks_exactly_what_it_says(lab, fault):
    observe, broken, healthy = BEHAVIOUR[fault.name]
    record = faults.apply(lab, fault.name)
    try:
        assert lab.status()["faults"][0]["name"] == fault.name
        assert observe(lab, record) == broken, f"{fault.name} on {record['node']}/{record['peer']}"
    finally:
        faults.clear(lab, fault.name)
    assert observe(lab, record) == healthy, f"{fault.name} cleared"
    st = lab.status()
    assert st["healthy"] and st["faults"] == []


@pytest.mark.root
def test_etp_local_fault_is_judged_by_design_not_as_a_failure(lab):
    from k8snetdoctor.engine import analyze
    from k8snetdoctor.transport.netns import collect_lab

    faults.apply(lab, "etp-local-no-endpoint")
    try:
        report = analyze(collect_lab(lab), [r for r in all_rules() if r.check in ("nodeport", "kubeproxy")])
    finally:
        faults.clear(lab)
    warned = {n for f in report.findings if f.id == "nodeport.etp-local" and f.status == "warn"
              and "default/echo-nodeport" in f.scope.services for n in f.scope.nodes}
    assert warned == {"node-0", "node-1"} and not [f for f in report.findings if f.status == "fail"]


@pytest.mark.root
def test_down_with_faults_still_active_leaves_nothing(lab_run_id):
    """Faults that start processes, write files and fill the legacy backend are all gone with the lab."""
    from test_check_lab import own_lab

    fixture = own_lab(lab_run_id + "d", nodes=2)
    small = next(fixture)
    try:
        for name in ("hostport-on-hostnetwork", "coredns-loop", "iptables-backend-split", "vxlan-blocked"):
            faults.apply(small, name)
        assert {r.name for r in small.state.processes} >= {"metrics-agent-node-1", "coredns-0"}
        assert len(small.faults()) == 4 and small.status()["healthy"]
    finally:
        with pytest.raises(StopIteration):
            next(fixture)        # own_lab's teardown: down, then nothing of the lab may be left
