"""Active tests without a network: reply matching, search-list emulation, evidence shapes, the runner's
deadline and error handling. The packets are built with scapy exactly as the kernel would send them."""
from __future__ import annotations

import asyncio
import socket
import struct

from k8snetdoctor.probes.active import collate, dns, icmp, run, tcp, vxlan
from k8snetdoctor.probes.active._net import checksum
from k8snetdoctor.probes.active.context import RunConfig
from k8snetdoctor.probes.active.model import Result, Test, Vantage, expectation_met

from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

POD = Vantage.for_pod("node-1", "default/toolbox-node-1", "10.244.1.2")
NODE = Vantage.for_node("node-1", "172.30.0.11")


def t(method="icmp", kind="conn", host="10.244.2.3", port=None, expect="reachable", v=POD, **params) -> Test:
    return Test(f"x:{method}:{host}:{port}", kind, method, "pod-pod", v, host, port, "tcp", "echo", "node-2",
                expect, params)


# -- icmp ---------------------------------------------------------------------------------------
def test_icmp_reply_error_and_strangers():
    req = icmp.build_echo(0x1234, 7, 56)
    assert len(req) == 64 and struct.unpack("!HH", req[4:6] + req[6:8]) == (0x1234, 7)
    assert checksum(req) == 0                                      # a valid ICMP checksum sums to zero
    reply = bytes(IP(src="10.244.2.3", dst="10.244.1.2") / ICMP(type=0, id=0x1234, seq=7) / b"x")
    assert icmp.parse(reply, "10.244.2.3", 0x1234, 7).result == "ok"
    assert icmp.parse(reply, "10.244.2.3", 0x1234, 8) is None               # someone else's ping
    quoted = IP(src="10.244.1.2", dst="10.244.2.3") / ICMP(type=8, id=0x1234, seq=7)
    frag = bytes(IP(src="10.244.1.1", dst="10.244.1.2") / ICMP(type=3, code=4, nexthopmtu=1450) / quoted)
    e = icmp.parse(frag, "10.244.2.3", 0x1234, 7)
    assert (e.result, e.reported_mtu, e.icmp_from) == ("too-big", 1450, "10.244.1.1")
    unreach = bytes(IP(src="172.30.0.1", dst="10.244.1.2") / ICMP(type=3, code=1) / quoted)
    assert icmp.parse(unreach, "10.244.2.3", 0x1234, 7).result == "unreachable"
    assert icmp.parse(unreach, "10.244.9.9", 0x1234, 7) is None


# -- tcp SYN ------------------------------------------------------------------------------------
def test_syn_answers_are_classified():
    host, port, sport = "172.30.0.11", 10250, 40000
    synack = bytes(IP(src=host, dst="172.30.0.10") / TCP(sport=port, dport=sport, flags="SA"))
    rst = bytes(IP(src=host, dst="172.30.0.10") / TCP(sport=port, dport=sport, flags="RA"))
    other = bytes(IP(src=host, dst="172.30.0.10") / TCP(sport=port, dport=sport + 1, flags="SA"))
    syn = IP(src="172.30.0.10", dst=host) / TCP(sport=sport, dport=port, flags="S")
    rejected = bytes(IP(src=host, dst="172.30.0.10") / ICMP(type=3, code=3) / syn)
    assert tcp.classify(synack, host, port, sport)[0] == "open"
    assert tcp.classify(rst, host, port, sport)[0] == "closed"
    assert tcp.classify(other, host, port, sport) is None
    res, detail = tcp.classify(rejected, host, port, sport)
    assert res == "filtered" and "3/3" in detail


# -- vxlan --------------------------------------------------------------------------------------
P = {"vni": 1, "srcVtepMac": "02:00:00:00:00:01", "dstVtepMac": "02:00:00:00:00:02",
     "srcVtepIp": "10.244.1.0", "dstVtepIp": "10.244.2.0"}


def test_vxlan_request_is_what_flannel_sends_and_the_reply_is_recognised():
    payload = VXLAN(vxlan.vxlan_payload(P, 77, 9))
    inner = Ether(bytes(payload)[8:])
    assert payload.vni == 1 and payload.flags == 0x08
    assert (inner.dst, inner[IP].src, inner[IP].dst, inner[ICMP].type) == ("02:00:00:00:00:02", "10.244.1.0",
                                                                          "10.244.2.0", 8)
    reply_inner = Ether(src=P["dstVtepMac"], dst=P["srcVtepMac"]) / IP(src="10.244.2.0", dst="10.244.1.0") \
        / ICMP(type=0, id=77, seq=9)
    frame = bytes(Ether() / IP(src="172.30.0.12", dst="172.30.0.11") / UDP(sport=51000, dport=8472)
                  / VXLAN(vni=1, flags=0x08) / reply_inner)
    got = vxlan.match_reply(frame, "172.30.0.12", 8472, P, 77, 9)
    assert got == {"vni": 1, "srcPort": 51000, "innerSrcMac": P["dstVtepMac"]}
    assert vxlan.match_reply(frame, "172.30.0.12", 8472, P, 77, 10) is None
    assert vxlan.match_reply(frame, "172.30.0.13", 8472, P, 77, 9) is None
    delivered = bytes(reply_inner[IP])
    assert vxlan._inner_delivered(delivered, P, 77, 9) is True
    assert vxlan._inner_delivered(delivered, P, 78, 9) is None


# -- dns ----------------------------------------------------------------------------------------
def test_search_list_follows_ndots_like_glibc():
    search = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert dns.expand("kubernetes.default", search, 5) == [
        "kubernetes.default.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.",
        "kubernetes.default.cluster.local.", "kubernetes.default."]
    assert dns.expand("a.b.c", ["corp.example"], 1) == ["a.b.c.", "a.b.c.corp.example."]
    assert dns.expand("example.com.", search, 5) == ["example.com."]
    assert dns.expand("host", ["."], 1) == ["host."]
    assert dns.ndots({"options": ["ndots:5", "timeout:1"]}) == 5 and dns.ndots({}) == 1


def test_nameservers_are_classified_for_loop_detection():
    params = {"clusterDns": ["10.96.0.10"], "corednsEndpoints": ["10.244.2.4"]}
    assert [dns.classify_server(ip, params) for ip in ("127.0.0.53", "10.96.0.10", "10.244.2.4", "1.1.1.1")] \
        == ["loopback", "cluster-dns", "coredns-endpoint", "other"]
    summary = dns.resolv_summary({"path": "/etc/resolv.conf", "nameservers": ["127.0.0.53"], "search": [],
                                  "options": ["edns0"]}, params)
    assert summary["nameserverClasses"] == {"127.0.0.53": "loopback"} and summary["ndots"] == 1


def test_a_failed_search_reports_the_failure_not_the_nxdomains():
    tried = [{"result": "nxdomain"}, {"result": "nxdomain"}, {"result": "timeout"}]
    assert dns._search_outcome(tried)["result"] == "timeout"
    assert dns._search_outcome([{"result": "nxdomain"}, {"result": "nodata"}])["result"] == "nodata"
    assert dns._search_outcome([{"result": "nxdomain"}])["result"] == "nxdomain"


# -- evidence shapes ----------------------------------------------------------------------------
def test_expectations():
    assert expectation_met("reachable", "ok") and expectation_met("reachable", "open")
    assert not expectation_met("reachable", "timeout") and expectation_met("reachable", "error") is None
    assert expectation_met("unreachable", "filtered") and not expectation_met("unreachable", "open")
    assert expectation_met("too-big", "too-big") and not expectation_met("ok", "timeout")
    assert expectation_met("any", "timeout") is None and expectation_met("reachable", "skipped") is None
    assert not expectation_met("reachable", "reply-dropped-locally")


def test_items_group_per_vantage_and_kind_with_failures_first():
    ok = Result(t("http", port=8080, path="/healthz"), "ok", 3.0, "HTTP 200 ok", {"status": 200, "rttMs": 0.2})
    bad = Result(t("icmp"), "timeout", None, "no reply within 1.0s")
    dfp = Result(t("df-ping", kind="mtu", expect="too-big", size=1451, mtu=1450), "too-big", None,
                 "not sent", {"routeMtu": 1450, "local": True})
    items = collate.evidence({POD.id: POD}, {POD.id: [ok, bad, dfp]}, {POD.id: None},
                             {POD.id: "netns ndlab-x-toolbox-node-1"}, {})
    conn, mtu = items
    assert (conn.kind, conn.node, conn.vantage, conn.error) == ("conn", "node-1", "pod", None)
    assert "in netns ndlab-x-toolbox-node-1" in conn.source and "http, icmp" in conn.source
    assert conn.excerpt.splitlines()[0].startswith("FAIL") and "expected reachable" in conn.excerpt
    first = conn.data["results"][0]
    assert {k: first[k] for k in ("from", "to", "toNode", "port", "proto", "result", "ok", "latencyMs", "status",
                                  "rttMs")} == {"from": "pod/node-1", "to": "echo", "toNode": "node-2", "port": 8080,
                                                "proto": "tcp", "result": "ok", "ok": True, "latencyMs": 3.0,
                                                "status": 200, "rttMs": 0.2}
    assert conn.data["vantage"] == {"id": "pod/node-1", "kind": "pod", "node": "node-1",
                                    "name": "default/toolbox-node-1", "ip": "10.244.1.2",
                                    "where": "netns ndlab-x-toolbox-node-1", "maxLoopLagMs": None}
    m = mtu.data["results"][0]
    assert (m["size"], m["mtu"], m["routeMtu"], m["local"], m["ok"]) == (1451, 1450, 1450, True, True)


def test_an_item_whose_every_test_could_not_run_carries_the_error():
    why = "needs root (CAP_NET_RAW) for a raw socket"
    rs = [Result(t("icmp", host=h), "error", None, why) for h in ("10.0.0.1", "10.0.0.2")]
    (item,) = collate.evidence({POD.id: POD}, {POD.id: rs}, {POD.id: None}, {POD.id: "host"}, {})
    assert item.error == why and not item.ok


# -- the runner ---------------------------------------------------------------------------------
class FakeExecutor:
    def __init__(self, broken: set[str] = frozenset()):
        self.broken = broken

    def call(self, vantage, fn, timeout):
        if vantage.id in self.broken:
            raise RuntimeError("network namespace gone")
        return fn()

    def resolv_conf(self, vantage):
        return ("/etc/resolv.conf", "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n")

    def node_resolv_conf(self, node):
        return None

    def where(self, vantage):
        return f"fake {vantage.id}"


def test_deadline_skips_what_did_not_finish_and_vantage_failures_are_evidence(monkeypatch):
    async def slow(test, ctx):
        await asyncio.sleep(30 if test.host == "slow" else 0)
        return Result(test, "ok", 1.0)

    monkeypatch.setattr(run, "_method", lambda test: slow)
    seen = []
    tests = [t(host="fast"), t(host="slow"), t(host="fast", v=NODE)]
    items = run.run_tests(tests, FakeExecutor(broken={NODE.id}), 0.5, config=RunConfig(),
                          progress=lambda d, n: seen.append((d, n)))
    summary = items[-1]
    assert summary.kind == "active-run" and summary.data["tests"] == 3
    assert summary.data["byResult"] == {"error": 1, "ok": 1, "skipped": 1}
    assert summary.data["vantageErrors"] == {NODE.id: "RuntimeError: network namespace gone"}
    assert summary.data["elapsedS"] < 5 and summary.data["maxLoopLagMs"] < 500
    pod_item = next(i for i in items if i.vantage == "pod")
    assert [r["result"] for r in pod_item.data["results"]] == ["ok", "skipped"]
    node_item = next(i for i in items if i.vantage == "node")
    assert node_item.error == "RuntimeError: network namespace gone"
    assert seen and max(seen) == (3, 3)


def test_a_test_that_raises_is_an_error_result_not_an_exception(monkeypatch):
    async def boom(test, ctx):
        raise ValueError("bug in a probe")

    monkeypatch.setattr(run, "_method", lambda test: boom)
    items = run.run_tests([t()], FakeExecutor(), 5)
    (res,) = items[0].data["results"]
    assert res["result"] == "error" and "ValueError: bug in a probe" in res["detail"]


def test_without_raw_sockets_icmp_is_an_error_item(monkeypatch):
    """No CAP_NET_RAW (an unprivileged run): the evidence says so instead of raising."""
    real = socket.socket

    def no_raw(family=-1, type=-1, proto=-1, fileno=None):
        if type == socket.SOCK_RAW:
            raise PermissionError(1, "Operation not permitted")
        return real(family, type, proto, fileno)

    monkeypatch.setattr(socket, "socket", no_raw)
    items = run.run_tests([t(host="127.0.0.1")], FakeExecutor(), 5)
    assert items[0].error == "needs root (CAP_NET_RAW) for a raw socket"


def test_silence_cut_short_by_the_deadline_is_skipped_not_a_failure(monkeypatch):
    async def silent(test, ctx):
        await asyncio.sleep(ctx.timeout(ctx.cfg.icmp_timeout))
        return Result(test, "timeout", None, "no reply")

    monkeypatch.setattr(run, "_method", lambda test: silent)
    items = run.run_tests([t()], FakeExecutor(), 0.3, config=RunConfig(icmp_timeout=1.0))
    (res,) = items[0].data["results"]
    assert res["result"] == "skipped" and res["ok"] is None and "deadline cut the test short" in res["detail"]
    assert items[0].excerpt.startswith("skip")
