"""collect(netns=...) against a real network namespace programmed like a flannel node.

The namespace gets what flanneld and kube-proxy would program (flannel.1 VXLAN device, an
onlink route, a permanent neighbour and FDB entry per peer, KUBE-* rules in both iptables
backends) plus a listening process, and the test asserts the collectors return exactly those
values — and that collecting changed none of the namespace's rules.
"""
from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from k8snetdoctor.probes.collect import ALL_KINDS, collect

pytestmark = pytest.mark.root

UNDERLAY_IP = "192.168.251.1"
PEER_NODE_IP = "192.168.251.2"
PEER_VTEP_MAC = "0a:58:0a:f4:01:00"
PEER_GW = "10.244.1.0"
LISTEN_PORT = 18080
CONFLIST = {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [
    {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
    {"type": "portmap", "capabilities": {"portMappings": True}}]}


def sh(*argv: str, check: bool = True) -> str:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def netns_names() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip()}


@dataclass
class Lab:
    ns: str
    underlay: str
    host_root: Path


def rules_snapshot(ns: str) -> dict[str, str]:
    """Everything collect must leave alone, minus timestamps and counters of *-save output."""
    def nocomments(text: str) -> str:  # and no packet counters: traffic of the namespace moves them
        return "\n".join(re.sub(r"\[\d+:\d+\]", "[-]", line) for line in text.splitlines()
                         if not line.startswith("#"))

    return {
        "iptables-nft": nocomments(sh("ip", "netns", "exec", ns, "iptables-nft-save")),
        "iptables-legacy": nocomments(sh("ip", "netns", "exec", ns, "iptables-legacy-save")),
        "nft": re.sub(r"counter packets \d+ bytes \d+", "counter",
                      sh("ip", "netns", "exec", ns, "nft", "list", "ruleset")),
        "ip_forward": sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"),
        # configuration only: carrier, timers and IPv6 autoconf still settle on their own
        "links": json.dumps(sorted((l["ifname"], l["mtu"], l.get("master"), l.get("address"))
                                   for l in json.loads(sh("ip", "-j", "-n", ns, "link", "show")))),
        "routes": sh("ip", "-n", ns, "-4", "route", "show", "table", "all"),
        "neigh": sh("ip", "-n", ns, "neigh", "show", "nud", "permanent"),
        # static entries only: a bridge learns (and ages out) MACs from traffic by itself
        "fdb": "\n".join(sorted(l for l in sh("bridge", "-n", ns, "fdb", "show").splitlines()
                                if "permanent" in l or " static" in l)),
    }


@pytest.fixture
def lab(tmp_path):
    ns = "ndc-" + secrets.token_hex(3)
    assert ns not in netns_names()
    underlay, peer = "ndcu0", "ndcu1"  # names live inside the namespace only
    listener = None
    sh("ip", "netns", "add", ns)
    try:
        n = ("ip", "-n", ns)
        sh(*n, "link", "set", "lo", "up")
        sh(*n, "link", "add", underlay, "type", "veth", "peer", "name", peer)
        sh(*n, "addr", "add", f"{UNDERLAY_IP}/24", "dev", underlay)
        sh(*n, "link", "add", "cni0", "type", "bridge")
        sh(*n, "addr", "add", "10.244.0.1/24", "dev", "cni0")
        sh(*n, "link", "set", peer, "master", "cni0")
        for dev in (underlay, peer, "cni0"):
            sh(*n, "link", "set", dev, "up")
        sh(*n, "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", UNDERLAY_IP, "dev", underlay,
           "dstport", "8472", "nolearning")
        sh(*n, "addr", "add", "10.244.0.0/32", "dev", "flannel.1")
        sh(*n, "link", "set", "flannel.1", "up")
        # what flanneld programs for a peer node
        sh(*n, "route", "add", "10.244.1.0/24", "via", PEER_GW, "dev", "flannel.1", "onlink")
        sh(*n, "neigh", "add", PEER_GW, "lladdr", PEER_VTEP_MAC, "dev", "flannel.1", "nud", "permanent")
        sh("bridge", "-n", ns, "fdb", "append", PEER_VTEP_MAC, "dev", "flannel.1", "dst", PEER_NODE_IP)
        # kube-proxy-like chains in both backends
        x = ("ip", "netns", "exec", ns)
        sh(*x, "iptables-nft", "-t", "nat", "-N", "KUBE-TEST")
        sh(*x, "iptables-nft", "-t", "nat", "-A", "KUBE-TEST", "-p", "tcp", "--dport", "30080",
           "-m", "comment", "--comment", "default/echo:http", "-j", "RETURN")
        sh(*x, "iptables-legacy", "-t", "filter", "-N", "KUBE-TEST")
        sh(*x, "iptables-legacy", "-t", "filter", "-A", "KUBE-TEST", "-j", "RETURN")
        sh(*x, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        code = ("import socket,sys,time\n"
                "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('0.0.0.0', {LISTEN_PORT})); s.listen()\n"
                "print('ready', flush=True); time.sleep(300)\n")
        listener = subprocess.Popen([*x, sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        # a node's files under its host root
        (tmp_path / "etc/cni/net.d").mkdir(parents=True)
        (tmp_path / "etc/cni/net.d/10-flannel.conflist").write_text(json.dumps(CONFLIST))
        (tmp_path / "opt/cni/bin").mkdir(parents=True)
        for b in ("bridge", "flannel", "portmap", "loopback"):
            (tmp_path / "opt/cni/bin" / b).write_text("")
        (tmp_path / "etc/resolv.conf").write_text("nameserver 192.168.251.254\nsearch lab.internal\n")
        yield Lab(ns, underlay, tmp_path)
    finally:
        if listener is not None:
            listener.terminate()
            try:
                listener.wait(timeout=10)
            except subprocess.TimeoutExpired:
                listener.kill()
                listener.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        assert ns not in netns_names(), f"network namespace {ns} was not removed"


def by_kind(bundle):
    out: dict[str, list] = {}
    for e in bundle.evidence:
        out.setdefault(e.kind, []).append(e)
    return out


def test_collect_in_a_netns_returns_what_was_programmed_and_changes_nothing(lab):
    before = rules_snapshot(lab.ns)
    t0 = time.monotonic()
    bundle = collect(host_root=str(lab.host_root), node_name="lab-node-1", netns=lab.ns)
    elapsed = time.monotonic() - t0
    after = rules_snapshot(lab.ns)

    ev = by_kind(bundle)
    assert set(ev) == set(ALL_KINDS)
    for e in bundle.evidence:
        assert e.ok, f"{e.kind}: {e.error}"
        assert e.node == "lab-node-1" and e.vantage == "node"

    # links: the VXLAN device exactly as created
    links = {l["name"]: l for l in ev["links"][0].data}
    fl = links["flannel.1"]
    assert fl["kind"] == "vxlan" and fl["mtu"] == 1450 and "10.244.0.0/32" in fl["addresses"]
    assert fl["vxlan"] == {"id": 1, "port": 8472, "local": UNDERLAY_IP, "dev": lab.underlay, "learning": False}
    assert links["ndcu1"]["master"] == "cni0" and links["cni0"]["kind"] == "bridge"
    assert f"{UNDERLAY_IP}/24" in links[lab.underlay]["addresses"]
    assert "vxlan id 1 local 192.168.251.1 dev ndcu0 dstport 8472 nolearning" in ev["links"][0].excerpt

    # routes: flannel's onlink route to the peer's subnet
    routes = {r["dst"]: r for r in ev["routes"][0].data}
    assert routes["10.244.1.0/24"] == {"dst": "10.244.1.0/24", "gateway": PEER_GW, "dev": "flannel.1",
                                       "onlink": True, "proto": "boot", "scope": "global", "type": "unicast"}
    assert routes["10.244.0.0/24"]["dev"] == "cni0" and routes["10.244.0.0/24"]["scope"] == "link"
    assert "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink" in ev["routes"][0].excerpt

    # fdb: the peer VTEP MAC points at the peer node's IP
    fdb = [f for f in ev["fdb"][0].data if f["dev"] == "flannel.1"]
    assert fdb == [{"mac": PEER_VTEP_MAC, "dev": "flannel.1", "dst": PEER_NODE_IP, "permanent": True, "self": True}]
    assert f"{PEER_VTEP_MAC} dev flannel.1 dst {PEER_NODE_IP} self permanent" in ev["fdb"][0].excerpt

    # neighbours: the permanent ARP entry for the peer's gateway
    neigh = [n for n in ev["neigh"][0].data if n["dst"] == PEER_GW]
    assert neigh == [{"dst": PEER_GW, "lladdr": PEER_VTEP_MAC, "dev": "flannel.1", "permanent": True,
                      "state": "PERMANENT"}]

    # iptables: both backends, each with its KUBE-TEST rule, run inside the namespace
    ipt = {e.data["backend"]: e for e in ev["iptables-save"]}
    assert set(ipt) == {"legacy", "nft"}
    assert ipt["nft"].data["kubeRules"] == 1 and ipt["legacy"].data["kubeRules"] == 1
    assert '-A KUBE-TEST -p tcp -m tcp --dport 30080 -m comment --comment "default/echo:http" -j RETURN' \
        in ipt["nft"].data["text"]
    assert "-A KUBE-TEST -j RETURN" in ipt["legacy"].data["text"]
    assert ipt["nft"].source == f"ip netns exec {lab.ns} iptables-nft-save"
    assert ipt["legacy"].source == f"ip netns exec {lab.ns} iptables-legacy-save"
    # the nft backend warns that legacy tables exist too: the split-backend hint is kept
    assert "iptables-legacy tables present" in ipt["nft"].excerpt

    # nft sees the iptables-nft table
    nft_doc = ev["nft-ruleset"][0].data["nftables"]
    assert {"family": "ip", "table": "nat", "name": "KUBE-TEST"}.items() <= next(
        i["chain"] for i in nft_doc if "chain" in i and i["chain"]["name"] == "KUBE-TEST").items()

    # sockets: our listener (with its process) and the kernel's VXLAN socket (no process)
    socks = ev["sockets"][0].data
    mine = [s for s in socks if s["proto"] == "tcp" and s["port"] == LISTEN_PORT]
    assert mine == [{"proto": "tcp", "local": "0.0.0.0", "port": LISTEN_PORT, "state": "LISTEN",
                     "process": Path(sys.executable).name[:15]}]
    assert {"proto": "udp", "local": "0.0.0.0", "port": 8472, "state": "UNCONN", "process": None} in socks

    # sysctls from inside the namespace
    sysctls = ev["sysctls"][0]
    assert sysctls.data["net.ipv4.ip_forward"] == "1"
    assert sysctls.source == f"ip netns exec {lab.ns} cat /proc/sys/..."

    # files from the node's host root
    cni = ev["cni"][0].data
    assert cni["files"][0]["plugins"] == ["flannel", "portmap"] and cni["files"][0]["portMappings"] is True
    assert cni["binaries"] == ["bridge", "flannel", "loopback", "portmap"]
    assert ev["resolv"][0].data == {"path": "/etc/resolv.conf", "nameservers": ["192.168.251.254"],
                                    "search": ["lab.internal"], "options": []}
    assert ev["host"][0].data["netns"] == lab.ns

    # read-only: nothing in the namespace changed
    assert after == before
    print(f"\ncollect(netns=...) took {elapsed * 1000:.0f} ms")


def test_collect_on_a_subset_of_kinds_in_a_netns(lab):
    bundle = collect(node_name="lab-node-1", netns=lab.ns, kinds=["fdb", "sysctls"])
    assert [e.kind for e in bundle.evidence] == ["fdb", "sysctls"]
    assert all(e.ok for e in bundle.evidence)
