"""Active tests against a real 3-node netns lab: healthy, then one fault at a time (each undone).

One lab per module, with a name of its own so it never meets the session lab or a person's.
Faults are applied with plain iptables/ip commands in the lab's namespaces — the probe itself
never changes anything — and every test restores what it changed in a `finally`.
"""
from __future__ import annotations

import secrets
import subprocess
import time

import pytest

from k8snetdoctor.lab import build, sg
from k8snetdoctor.lab import spec as S
from k8snetdoctor.probes.active.lab import LabExecutor, probe_lab
from k8snetdoctor.probes.active.model import CONN, Test, Vantage
from k8snetdoctor.probes.active.run import run_tests

pytestmark = pytest.mark.root

NAME = "act" + secrets.token_hex(3)
A, B, CP = "node-1", "node-2", "node-0"


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"ndlab-{NAME}-")]


@pytest.fixture(scope="module")
def alab():
    from k8snetdoctor.lab.lab import down, up

    try:
        lab = up(NAME, nodes=3)
    except Exception:
        down(NAME)
        raise
    try:
        yield lab
    finally:
        down(NAME)
        left = netns_names()
        if left:
            subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in left),
                           text=True, capture_output=True)
        assert not left, f"namespaces left behind by lab {NAME}: {left}"


def ipt(lab, node: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", lab.node_ns(node), "iptables", "-w", *args], check=True,
                   capture_output=True)


def results(evidence, kind: str | None = None) -> list[dict]:
    return [r for e in evidence if e.kind != "active-run" and (kind is None or e.kind == kind)
            for r in e.data["results"]]


def failures(evidence) -> str:
    lines = [line for e in evidence for line in e.excerpt.splitlines() if line.startswith(("FAIL", "ERR", "skip"))]
    return f"{len(lines)} tests not as expected:\n" + "\n".join(lines)


def one(evidence, **want) -> dict:
    hits = [r for r in results(evidence) if all(r.get(k) == v for k, v in want.items())]
    assert len(hits) == 1, (want, hits)
    return hits[0]


# -- healthy ------------------------------------------------------------------------------------
def test_healthy_lab_every_test_as_expected(alab):
    t0 = time.monotonic()
    ev = probe_lab(alab, deadline_s=30)
    elapsed = time.monotonic() - t0
    summary = ev[-1]
    assert summary.kind == "active-run"
    assert not [r for r in results(ev) if r["ok"] is False], failures(ev)
    assert not [r for r in results(ev) if r["result"] in ("error", "skipped")], failures(ev)
    assert summary.data["skipped"] == 0 and not summary.data["vantageErrors"] and not [e for e in ev if e.error]
    assert {e.kind for e in ev} == {"conn", "vxlan-echo", "mtu", "dns", "active-run"}
    assert elapsed < 10, elapsed
    # provenance: node and vantage set, source names method and namespace
    vx = next(e for e in ev if e.kind == "vxlan-echo" and e.node == A)
    assert vx.vantage == "node" and f"in netns {alab.node_ns(A)}" in vx.source and "vxlan" in vx.source
    pod_dns = next(e for e in ev if e.kind == "dns" and e.node == A and e.vantage == "pod")
    assert pod_dns.data["resolv"]["search"][0] == "default.svc.cluster.local"
    assert pod_dns.data["resolv"]["nameserverClasses"] == {S.KUBE_DNS_IP: "cluster-dns"}
    # DF at the overlay MTU passes, one byte above is refused (locally: the pod's MTU is right)
    mtu = [r for r in results(ev, "mtu") if r["category"] == "mtu-pod"]
    assert {(r["size"], r["result"]) for r in mtu} == {(S.VXLAN_MTU, "ok"), (S.VXLAN_MTU + 1, "too-big")}
    assert all(r["local"] for r in mtu if r["result"] == "too-big")
    # by design: kubelet closed to the internet, ETP Local NodePort silent where no endpoint runs
    assert {r["result"] for r in results(ev) if r["category"] == "kubelet" and r["from"] == "external"} \
        == {"filtered"}
    assert {r["result"] for r in results(ev) if r["category"] == "kubelet" and r["from"] == f"node/{CP}"} \
        == {"open"}
    # the short name went through the search list as a pod's resolver would send it
    short = one(ev, category="dns-resolv", **{"from": f"pod/{A}"}, qname="kubernetes.default")
    assert [t["name"] for t in short["tried"]] == ["kubernetes.default.default.svc.cluster.local.",
                                                   "kubernetes.default.svc.cluster.local."]
    assert short["answers"] == [S.KUBERNETES_SVC_IP]


# -- VXLAN dropped one way ----------------------------------------------------------------------
def test_vxlan_dropped_from_a_at_b_is_localised(alab):
    """B's INPUT drops UDP 8472 from A. The echo A->B gets no reply (B never takes the request);
    the echo B->A shows A answering — its encapsulated reply is on B's wire — but B's own stack
    never gets it: the A->B direction is broken, at B. Pod traffic fails between A and B both
    ways (TCP and ping need the return path); pairs with the third node are untouched."""
    rule = ["INPUT", "-s", alab.node_ip(A), "-p", "udp", "--dport", str(S.VXLAN_PORT), "-j", "DROP"]
    ipt(alab, B, "-I", *rule)
    try:
        ev = probe_lab(alab, deadline_s=20, select=lambda t: t.category in ("vxlan", "pod-pod"))
    finally:
        ipt(alab, B, "-D", *rule)
    ab = one(ev, category="vxlan", **{"from": f"node/{A}"}, to=B)
    ba = one(ev, category="vxlan", **{"from": f"node/{B}"}, to=A)
    assert ab["result"] == "no-reply" and ab["delivered"] is None, failures(ev)
    assert ba["result"] == "reply-dropped-locally" and ba["delivered"] is False, failures(ev)
    others = [r for r in results(ev, "vxlan-echo") if {r["from"], r["to"]} != {f"node/{A}", B}
              and {r["from"], r["to"]} != {f"node/{B}", A}]
    assert len(others) == 4 and all(r["result"] == "reply" and r["delivered"] for r in others), failures(ev)
    pod = [r for r in results(ev, "conn") if r["category"] == "pod-pod"]
    broken = {(r["from"], r["toNode"]) for r in pod if r["ok"] is False}
    assert broken == {(f"pod/{A}", B), (f"pod/{B}", A)}, failures(ev)
    assert all(r["ok"] for r in pod if CP in (r["from"].split("/")[1], r["toNode"])), failures(ev)


# -- SYN classification -------------------------------------------------------------------------
def test_syn_open_closed_filtered_and_connect(alab):
    src = Vantage.for_node(CP, alab.node_ip(CP))
    host = alab.node_ip(A)

    def probe() -> dict[str, dict]:
        tests = [Test(f"syn:{m}", CONN, m, "kubelet", src, host, S.KUBELET_PORT, "tcp", A, A)
                 for m in ("syn", "tcp")]
        ev = run_tests(tests, LabExecutor(alab), 10)
        return {r["method"]: r for r in results(ev)}

    base = ["INPUT", "-s", alab.node_ip(CP), "-p", "tcp", "--dport", str(S.KUBELET_PORT), "-j"]
    seen = {"listening": probe()}
    for name, target in (("drop", ["DROP"]), ("reset", ["REJECT", "--reject-with", "tcp-reset"]),
                         ("icmp", ["REJECT"])):
        ipt(alab, A, "-I", *base, *target)
        try:
            seen[name] = probe()
        finally:
            ipt(alab, A, "-D", *base, *target)
    words = {k: (v["syn"]["result"], v["tcp"]["result"]) for k, v in seen.items()}
    assert words == {"listening": ("open", "open"), "drop": ("filtered", "timeout"),
                     "reset": ("closed", "refused"), "icmp": ("filtered", "refused")}, seen
    assert seen["drop"]["syn"]["detail"].startswith("no answer")
    assert "ICMP unreachable 3/3" in seen["icmp"]["syn"]["detail"]
    assert seen["listening"]["syn"]["latencyMs"] < 50


def test_kubelet_closed_by_the_security_group_is_filtered_from_the_control_plane(alab):
    drop = sg.rule_drop_from(alab.node_ip(CP), "tcp", S.KUBELET_PORT, note="test: kubelet closed")
    ipt(alab, B, "-I", sg.CHAIN, "1", *drop)
    try:
        ev = probe_lab(alab, deadline_s=15, select=lambda t: t.category == "kubelet")
    finally:
        ipt(alab, B, "-D", sg.CHAIN, *drop)
    cp = {r["to"]: r for r in results(ev) if r["from"] == f"node/{CP}"}
    assert cp[B]["result"] == "filtered" and cp[B]["ok"] is False
    assert cp[A]["result"] == "open" and cp[CP]["result"] == "open"
    assert all(r["result"] == "filtered" and r["ok"] for r in results(ev) if r["from"] == "external")
    assert "FAIL" in next(e for e in ev if e.vantage == "node").excerpt


# -- MTU ----------------------------------------------------------------------------------------
def test_pod_mtu_above_the_overlay_is_refused_by_the_node(alab):
    """A pod whose interface says 1500 on a 1450 overlay: DF at 1450 passes, 1451 leaves the pod
    and the node answers "fragmentation needed, MTU 1450" — the mismatch FM-08 describes."""
    pod = alab.spec.pod(f"toolbox-{A}")
    host_if, pod_ns, node_ns = build.veth_name(pod), alab.pod_ns(pod.name), alab.node_ns(A)

    def mtu(value: int) -> None:
        subprocess.run(["ip", "-n", node_ns, "link", "set", host_if, "mtu", str(value)], check=True)
        subprocess.run(["ip", "-n", pod_ns, "link", "set", "eth0", "mtu", str(value)], check=True)

    mtu(S.UNDERLAY_MTU)
    try:
        ev = probe_lab(alab, deadline_s=10, select=lambda t: t.category == "mtu-pod" and t.vantage.node == A)
    finally:
        mtu(S.VXLAN_MTU)
        subprocess.run(["ip", "-n", pod_ns, "route", "flush", "cache"], check=True)
    rs = results(ev, "mtu")
    assert {r["result"] for r in rs if r["size"] == S.VXLAN_MTU} == {"ok"}, failures(ev)
    above = [r for r in rs if r["size"] == S.VXLAN_MTU + 1]
    assert above and all(r["result"] == "too-big" and not r["local"] and r["reportedMtu"] == S.VXLAN_MTU
                         and r["routeMtu"] == S.UNDERLAY_MTU for r in above), above


# -- DNS ----------------------------------------------------------------------------------------
def test_upstream_dns_down_cluster_names_still_answer(alab):
    alab.stop_process("upstream-dns")
    try:
        ev = probe_lab(alab, deadline_s=15, select=lambda t: t.kind == "dns")
    finally:
        alab.start_process("upstream-dns")
    rs = results(ev, "dns")
    cluster = [r for r in rs if r["qname"].endswith(".svc.cluster.local.") or r["qname"] == "kubernetes.default"]
    assert cluster and all(r["ok"] for r in cluster), failures(ev)
    external = [r for r in rs if r["qname"].rstrip(".") == "example.com"]
    assert {r["category"] for r in external} == {"dns-cluster-ip", "dns-coredns-endpoint", "dns-resolv",
                                                 "dns-node-resolv", "dns-coredns-upstream"}
    assert all(r["result"] in ("timeout", "servfail", "unreachable") for r in external), failures(ev)
    assert {r["result"] for r in external if r["category"] in ("dns-node-resolv", "dns-coredns-upstream")} \
        == {"unreachable"}     # the upstream's port is closed: ICMP port unreachable, at once


def test_node_resolv_conf_pointing_at_a_loopback_stub_is_shown(alab):
    """FM-29: CoreDNS forwards to /etc/resolv.conf; on its node that file names 127.0.0.53."""
    node = alab.spec.pod("coredns-0").node
    path = alab.host_root(node) / "etc/resolv.conf"
    saved = path.read_text()
    path.write_text("# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n"
                    "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n")
    try:
        ev = probe_lab(alab, deadline_s=10, select=lambda t: t.kind == "dns" and t.vantage.node == node
                       and t.params["role"] in ("coredns-upstream", "node-resolv"))
    finally:
        path.write_text(saved)
    host = next(e for e in ev if e.kind == "dns" and e.vantage == "node")
    assert host.data["resolv"]["nameserverClasses"] == {"127.0.0.53": "loopback"}
    up = one(ev, category="dns-coredns-upstream")
    assert (up["server"], up["serverClass"], up["result"]) == ("127.0.0.53", "loopback", "unreachable")


def test_a_short_global_deadline_skips_instead_of_failing(alab):
    t0 = time.monotonic()
    ev = probe_lab(alab, deadline_s=1.0)
    elapsed = time.monotonic() - t0
    summary = ev[-1].data
    assert elapsed < 4, elapsed
    assert summary["skipped"] > 0 and summary["deadlineS"] == 1.0
    assert not [r for r in results(ev) if r["ok"] is False], failures(ev)
