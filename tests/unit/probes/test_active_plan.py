"""The active-test plan (pure): all pairs on a small cluster, sampled peers plus anchors on a big one,
the same plan on every run, and expectations that match what the lab's kube-proxy does by design."""
from __future__ import annotations

from collections import defaultdict

import pytest

from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.view import cluster_view
from k8snetdoctor.probes.active.model import REACHABLE, UNREACHABLE
from k8snetdoctor.probes.active.plan import PlanConfig, build_plan
from k8snetdoctor.probes.active.targets import vantages_for

TOOLBOX = {"app": "toolbox"}
CFG = PlanConfig(underlay_mtu=1500, pod_mtu=1450)


def lab_plan(nodes: int, cfg: PlanConfig = CFG, edit=None):
    view = cluster_view(S.make("unit", nodes))
    if edit:
        edit(view)
    return view, build_plan(view, vantages_for(view, TOOLBOX, external_ip=S.EXTERNAL_IP), cfg)


def pairs(plan, category: str, method: str | None = None) -> set[tuple[str, str]]:
    """(source node, target node) pairs a category covers across nodes."""
    return {(t.vantage.node, t.target_node) for t in plan.tests if t.category == category
            and (method is None or t.method == method) and t.vantage.node and t.target_node != t.vantage.node}


def by_source(plan, category: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for t in plan.tests:
        if t.category == category and t.vantage.node:
            out[t.vantage.node].add(t.target_node)
    return out


def test_three_nodes_test_every_pair_both_ways():
    view, plan = lab_plan(3)
    nodes = view.node_names()
    every = {(a, b) for a in nodes for b in nodes if a != b}
    assert pairs(plan, "vxlan") == every
    assert pairs(plan, "mtu-underlay") == every and pairs(plan, "mtu-pod") == every
    assert pairs(plan, "pod-pod", "icmp") == every          # node-0 has no echo pod: its toolbox is pinged
    assert pairs(plan, "pod-pod", "http") == {(a, b) for a, b in every if b != "node-0"}
    assert pairs(plan, "pod-node", "tcp") == every
    assert plan.sampling["fullMesh"] and not plan.notes
    ids = [t.id for t in plan.tests]
    assert len(ids) == len(set(ids)), "test ids must be unique"


def test_three_nodes_expectations_follow_the_design():
    view, plan = lab_plan(3)
    local = [t for t in plan.tests if t.category == "nodeport" and t.port == S.NODEPORT_LOCAL]
    hp_node = S.make("unit", 3).pod("echo-hostport").node
    for t in local:   # ETP Local: only the endpoint's node, or a client on the node itself, answers
        want = REACHABLE if t.target_node == hp_node or t.vantage.node == t.target_node else UNREACHABLE
        assert t.expect == want, t.id
    kubelet = [t for t in plan.tests if t.category == "kubelet"]
    assert {(t.vantage.id, t.expect) for t in kubelet} == {("node/node-0", REACHABLE), ("external", UNREACHABLE)}
    assert {t.target_node for t in kubelet if t.vantage.id == "external"} == set(view.node_names())
    assert all(t.method == "syn" and t.port == S.KUBELET_PORT for t in kubelet)
    hostport = [t for t in plan.tests if t.category == "hostport"]
    assert {t.vantage.node for t in hostport} == set(view.node_names())
    assert {(t.host, t.port) for t in hostport} == {(view.internal_ip(hp_node), S.HOST_PORT)}
    mtu = sorted((t.params["size"], t.expect) for t in plan.tests if t.category == "mtu-pod")
    assert set(mtu) == {(1450, "ok"), (1451, "too-big")}
    assert {t.params["size"] for t in plan.tests if t.category == "mtu-underlay"} == {1500, 1501}


def test_vxlan_echo_carries_both_vteps_from_the_view():
    view, plan = lab_plan(3)
    t = next(t for t in plan.tests if t.category == "vxlan" and t.vantage.node == "node-1"
             and t.target_node == "node-2")
    assert (t.host, t.port, t.proto) == (view.internal_ip("node-2"), 8472, "udp")
    assert t.params == {"vni": 1, "srcVtepMac": view.flannel("node-1").vtep_mac,
                        "dstVtepMac": view.flannel("node-2").vtep_mac, "srcVtepIp": "10.244.1.0",
                        "dstVtepIp": "10.244.2.0"}


def test_dns_is_asked_several_ways_from_every_node():
    view, plan = lab_plan(3)
    dns = [t for t in plan.tests if t.kind == "dns"]
    coredns = S.make("unit", 3).pod("coredns-0")
    for n in view.node_names():
        pod = {(t.params["role"], t.host, t.params["qname"]) for t in dns if t.vantage.id == f"pod/{n}"}
        assert ("cluster-ip", S.KUBE_DNS_IP, "kubernetes.default.svc.cluster.local.") in pod
        assert ("coredns-endpoint", coredns.ip, "kubernetes.default.svc.cluster.local.") in pod
        assert ("cluster-ip", S.KUBE_DNS_IP, "echo.default.svc.cluster.local.") in pod
        assert ("cluster-ip", S.KUBE_DNS_IP, "example.com.") in pod
        assert ("resolv", "@resolv", "kubernetes.default") in pod        # the short name, through the search list
        host = {(t.params["role"], t.host) for t in dns if t.vantage.id == f"node/{n}"}
        assert ("node-resolv", "@resolv") in host and ("cluster-ip", S.KUBE_DNS_IP) in host
    upstream = [t for t in dns if t.params["role"] == "coredns-upstream"]
    assert [(t.vantage.id, t.host) for t in upstream] == [(f"pod/{coredns.node}", "@node-resolv")]
    nx = [t for t in dns if t.expect == "nxdomain"]
    assert len(nx) == 3 and all(t.params["qname"].startswith("netdoctor-absent.") for t in nx)


def test_twenty_five_nodes_sample_k_peers_plus_anchors():
    view, plan = lab_plan(25)
    spec = S.make("unit", 25)
    nodes = view.node_names()
    coredns_node, hp_node = spec.pod("coredns-0").node, spec.pod("echo-hostport").node
    anchors = set(plan.sampling["anchors"])
    assert {coredns_node, hp_node} <= anchors and len(anchors) == CFG.max_anchors
    assert any("not anchors" in n for n in plan.notes)       # echo on every worker: the cap is said out loud
    vx = by_source(plan, "vxlan")
    assert set(vx) == set(nodes)
    for n in nodes:
        peers = vx[n]
        assert n not in peers
        assert anchors - {n} <= peers                              # every anchor, from everywhere
        assert len(peers - anchors) == CFG.sample_k                # plus exactly k sampled others
        assert by_source(plan, "mtu-underlay")[n] == peers
        assert by_source(plan, "pod-pod")[n] - {n} == peers
    assert len(pairs(plan, "vxlan")) <= 25 * (CFG.sample_k + CFG.max_anchors) < 25 * 24   # not the full mesh
    sampled = {p for n in nodes for p in vx[n] - anchors}
    assert len(sampled) > 15, "different nodes draw different samples"
    assert {t.target_node for t in plan.tests if t.category == "kubelet" and t.vantage.id == "external"} \
        == set(nodes)
    ext_np = {t.target_node for t in plan.tests if t.category == "nodeport" and t.vantage.id == "external"}
    assert ext_np == set(nodes)                                    # from outside: every node, not sampled


def test_the_plan_is_deterministic_and_the_seed_moves_the_sample():
    _, a = lab_plan(25)
    _, b = lab_plan(25)
    assert [t.id for t in a.tests] == [t.id for t in b.tests]
    _, c = lab_plan(25, PlanConfig(underlay_mtu=1500, pod_mtu=1450, seed=7))
    assert by_source(a, "vxlan") != by_source(c, "vxlan")
    assert set(a.sampling["anchors"]) >= {"node-1", "node-24"} <= set(c.sampling["anchors"])


def test_few_echo_nodes_are_all_anchors_without_a_cap():
    """An echo Deployment of 3 replicas (the intended workload): every echo node is reached from every node."""
    keep = {"echo-node-3", "echo-node-9", "echo-node-17", "echo-hostport"}

    def edit(view):
        view.pods = [p for p in view.pods if not p["metadata"]["name"].startswith("echo") or
                     p["metadata"]["name"] in keep]
        names_ip = {p["status"]["podIP"] for p in view.pods}
        for es in view.endpointSlices:
            es["endpoints"] = [e for e in es["endpoints"] if e["addresses"][0] in names_ip
                               or e.get("targetRef") is None]

    view, plan = lab_plan(25, edit=edit)
    anchors = set(plan.sampling["anchors"])
    assert anchors == {"node-1", "node-3", "node-9", "node-17", "node-24"} and not plan.notes
    for n, peers in by_source(plan, "vxlan").items():
        assert anchors - {n} <= peers and len(peers - anchors) == CFG.sample_k


@pytest.mark.parametrize("nodes", [10, 11])
def test_full_mesh_threshold(nodes):
    cfg = PlanConfig(sample_k=2, max_anchors=3)
    _, plan = lab_plan(nodes, cfg)
    per = [len(p) for p in by_source(plan, "vxlan").values()]
    if nodes <= cfg.full_mesh_max:
        assert per == [nodes - 1] * nodes and plan.sampling["fullMesh"]
    else:
        assert not plan.sampling["fullMesh"] and max(per) <= cfg.sample_k + cfg.max_anchors


def test_missing_vantages_shrink_the_plan_instead_of_failing():
    view = cluster_view(S.make("unit", 3))
    only_nodes = [v for v in vantages_for(view, None, external=False)]
    plan = build_plan(view, only_nodes, CFG)
    assert plan.tests and {t.vantage.kind for t in plan.tests} == {"node"}
    assert not [t for t in plan.tests if t.category in ("pod-pod", "mtu-pod", "pod-clusterip")]
    assert {t.vantage.id for t in plan.tests if t.category == "kubelet"} == {"node/node-0"}
    view.nodes = [dict(n, metadata={k: v for k, v in n["metadata"].items() if k != "labels"},
                       spec={k: v for k, v in n["spec"].items() if k != "taints"}) for n in view.nodes]
    plan = build_plan(view, only_nodes, CFG)
    assert not [t for t in plan.tests if t.category == "kubelet"]
    assert any("control-plane" in n for n in plan.notes)
