"""flannel.peers and flannel.podcidr on the healthy 3-node Vagrant cluster and on faults derived from it.

Same approach as test_flannel.py (healthy fixture plus exactly the change that reproduces one failure
mode), whose fixture loader, helpers and shared faults these tests reuse.
"""
import json
import re

from test_flannel import ALL, FL, MAC, MASTER, NODE1, NODE2, Cluster, commands, only, overwrite_not_applied, vagrant_nat

from k8snetdoctor import engine
from k8snetdoctor.checks.flannel_peers import PEERS, POD_CIDR
from k8snetdoctor.rule import EvidenceSet


# -- faults ------------------------------------------------------------------------------------
def parse_fdb_sample(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"(\S+) (?:dev (\S+) )?dst (\S+)( self)?( permanent)?", line)
        if m:
            out.append({"mac": m[1], "dev": m[2], "dst": m[3], "self": bool(m[4]), "permanent": bool(m[5])})
    return out


def stale_fdb_b3_1(c):
    """B3-1 verbatim on the master: two MACs per peer after --iface (the sample prints no dev column)."""
    fdb = c.data("fdb", MASTER)
    fdb[:] = [e for e in fdb if e["dev"] != "flannel.1"] + parse_fdb_sample((FL / "b3-1-vagrant-stale.bridge-fdb.txt").read_text())


# -- flannel.peers -----------------------------------------------------------------------------
def test_peers_pass_once_per_node_on_the_healthy_cluster():
    """Healthy pairs are summed up per node; only a broken pair gets its own finding."""
    found = Cluster().run(PEERS)
    assert set(found) == {f"flannel.peers@{n}" for n in (MASTER, NODE1, NODE2)}
    assert {f.status for f in found.values()} == {"pass"}
    f = found[f"flannel.peers@{NODE2}"]
    assert "match all 2 peer(s)" in f.message
    assert "10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink" in f.evidence[0].excerpt


def test_missing_route_fails_only_that_pair_with_the_exact_route_and_fix():
    c = Cluster()
    c.data("routes", NODE1)[:] = [r for r in c.data("routes", NODE1) if r["dst"] != "10.244.2.0/24"]
    found = c.run(PEERS)
    assert list(only(found, "fail")) == [f"flannel.peers@{NODE1}->{NODE2}"]
    f = found[f"flannel.peers@{NODE1}->{NODE2}"]
    assert f.scope.nodePairs == [[NODE1, NODE2]] and f.failureModes == ["FM-09"]
    assert "no route `10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink`" in f.message
    assert "ip route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink   # on k8s-node01" in commands(f)
    assert f"flannel.peers@{NODE1}" not in found  # no node-level pass while a pair of it fails
    assert found[f"flannel.peers@{MASTER}"].status == "pass" and found[f"flannel.peers@{NODE2}"].status == "pass"


def test_route_via_the_underlay_without_directrouting_fails_naming_found_and_expected():
    """A host-gw leftover: the route exists but bypasses flannel.1, so no VXLAN happens."""
    c = Cluster()
    next(r for r in c.data("routes", NODE2) if r["dst"] == "10.244.0.0/24").update(
        gateway="192.168.56.101", dev="enp0s8", onlink=False)
    f = c.run(PEERS)[f"flannel.peers@{NODE2}->{MASTER}"]
    assert f.status == "fail"
    assert ("route `10.244.0.0/24 via 192.168.56.101 dev enp0s8`, expected `10.244.0.0/24 via 10.244.0.0 dev "
            "flannel.1 onlink`") in f.message
    c.data("routes", NODE2)[:] = [dict(r, onlink=False) if r["dst"] == "10.244.0.0/24" else r for r in c.data("routes", NODE2)]
    next(r for r in c.data("routes", NODE2) if r["dst"] == "10.244.0.0/24").update(gateway="10.244.0.0", dev="flannel.1")
    assert c.run(PEERS)[f"flannel.peers@{NODE2}->{MASTER}"].status == "fail"  # same route without onlink


def test_a_learned_rather_than_permanent_neighbour_fails():
    c = Cluster()
    next(n for n in c.data("neigh", NODE1) if n["dst"] == "10.244.0.0").update(permanent=False, state="STALE")
    f = c.run(PEERS)[f"flannel.peers@{NODE1}->{MASTER}"]
    assert f.status == "fail" and "neighbour `10.244.0.0 dev flannel.1 lladdr 4e:91:11:87:85:f8 STALE` is not PERMANENT" in f.message


def test_b3_1_stale_duplicate_mac_next_to_the_current_one_warns_and_names_the_stale_mac():
    c = Cluster()
    stale_fdb_b3_1(c)
    found = c.run(PEERS)
    f = found[f"flannel.peers@{MASTER}->{NODE1}"]
    assert f.status == "warn" and "8e:32:8d:27:ac:9a" in f.message and "two MACs for one peer" in f.message
    assert "bridge fdb del 8e:32:8d:27:ac:9a dev flannel.1 dst 192.168.56.102" in commands(f)
    assert "0e:22:e2:f3:09:04 dst 192.168.56.103 self permanent next to" in found[f"flannel.peers@{MASTER}->{NODE2}"].message
    assert "expected fdb: ce:cf:6f:d7:c9:4c dev flannel.1 dst 192.168.56.102 self permanent" in f.evidence[0].excerpt


def test_stale_mac_in_neighbour_and_fdb_without_the_current_one_fails():
    """The peer's flannel.1 was recreated (new MAC) and this node never heard: nothing matches."""
    c = Cluster()
    for e in c.data("fdb", MASTER):
        if e["mac"] == MAC[NODE1]:
            e["mac"] = "8e:32:8d:27:ac:9a"
    next(n for n in c.data("neigh", MASTER) if n["dst"] == "10.244.1.0")["lladdr"] = "8e:32:8d:27:ac:9a"
    f = c.run(PEERS)[f"flannel.peers@{MASTER}->{NODE1}"]
    assert f.status == "fail"
    assert "no FDB entry `ce:cf:6f:d7:c9:4c dev flannel.1 dst 192.168.56.102 self permanent`" in f.message
    assert "FDB has 8e:32:8d:27:ac:9a dst 192.168.56.102 instead" in f.message
    assert "neighbour 10.244.1.0 lladdr 8e:32:8d:27:ac:9a, expected lladdr ce:cf:6f:d7:c9:4c" in f.message
    assert "ip neigh replace 10.244.1.0 dev flannel.1 lladdr ce:cf:6f:d7:c9:4c nud permanent   # on k8s-master01" in commands(f)


def test_fdb_dst_other_than_public_ip_fails_pair_and_vtep_address_explains_it():
    c = Cluster()
    overwrite_not_applied(c)
    found = {f.key: f for f in engine.judge(ALL, c.view, EvidenceSet(c.evidence))}
    pair = found[f"flannel.peers@{MASTER}->{NODE2}"]
    assert pair.status == "fail"
    assert "FDB entry a2:05:9f:ac:40:da dst 192.168.56.103, expected dst 203.0.113.30" in pair.message
    assert pair.causedBy == [f"flannel.vtep-address@{NODE2}"] and not pair.rootCause
    assert found[f"flannel.vtep-address@{NODE2}"].rootCause


def test_vagrant_peers_tunnel_to_themselves_and_the_fm05_finding_is_the_root_cause():
    c = Cluster()
    vagrant_nat(c)
    found = {f.key: f for f in engine.judge(ALL, c.view, EvidenceSet(c.evidence))}
    pair = found[f"flannel.peers@{NODE1}->{NODE2}"]
    assert pair.status == "fail" and "this node's own VTEP address" in pair.message
    root = found[f"flannel.vtep-address@{MASTER},{NODE1},{NODE2}"]
    assert root.rootCause and pair.key in root.explains


def test_entries_of_a_removed_node_warn_on_that_node():
    c = Cluster()
    c.data("fdb", MASTER).append({"mac": "de:ad:be:ef:00:04", "dev": "flannel.1", "dst": "192.168.56.104",
                                  "permanent": True, "self": True})
    f = c.run(PEERS)[f"flannel.peers@{MASTER}"]
    assert f.status == "warn" and "de:ad:be:ef:00:04 dev flannel.1 dst 192.168.56.104" in f.message
    assert "bridge fdb del de:ad:be:ef:00:04 dev flannel.1 dst 192.168.56.104   # on k8s-master01" in commands(f)


def test_a_route_to_a_live_peer_missing_its_podcidr_is_not_called_an_orphan():
    c = Cluster()
    c.view.node(NODE1)["spec"] = {}
    assert c.run(PEERS)[f"flannel.peers@{MASTER}"].status == "pass"


def test_direct_routing_peers_need_no_fdb_entry():
    c = Cluster()
    c.view.configMaps[0]["data"]["net-conf.json"] = json.dumps(
        {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "DirectRouting": True}})
    route = next(r for r in c.data("routes", MASTER) if r["dst"] == "10.244.1.0/24")
    route.update(gateway="192.168.56.102", dev="enp0s8", onlink=False)
    c.data("fdb", MASTER)[:] = [e for e in c.data("fdb", MASTER) if e["mac"] != MAC[NODE1]]
    found = c.run(PEERS)
    assert f"flannel.peers@{MASTER}->{NODE1}" not in found
    assert found[f"flannel.peers@{MASTER}"].status == "pass" and "(1 by DirectRouting)" in found[f"flannel.peers@{MASTER}"].message
    route.update(gateway="10.244.1.0", dev="flannel.1", onlink=True)  # back to VXLAN: the FDB gap matters again
    assert c.run(PEERS)[f"flannel.peers@{MASTER}->{NODE1}"].status == "fail"


# -- flannel.podcidr ---------------------------------------------------------------------------
def test_podcidr_passes_when_each_node_has_a_disjoint_one():
    found = Cluster().run(POD_CIDR)
    assert {f.status for f in found.values()} == {"pass"} and len(found) == 3


def test_missing_podcidr_fails_fm10_and_peers_skip_that_peer():
    c = Cluster()
    c.view.node(NODE2)["spec"] = {}
    f = c.run(POD_CIDR)[f"flannel.podcidr@{NODE2}"]
    assert f.status == "fail" and f.failureModes == ["FM-10"] and "no spec.podCIDR" in f.message
    assert "kubeadm init --pod-network-cidr=10.244.0.0/16   # at cluster creation" in commands(f)
    assert "--allocate-node-cidrs=true --cluster-cidr=10.244.0.0/16" in commands(f)
    pair = c.run(PEERS)[f"flannel.peers@{MASTER}->{NODE2}"]
    assert pair.status == "skip" and "has no podCIDR" in pair.message


def test_overlapping_podcidrs_fail_both_nodes_fm27():
    c = Cluster()
    c.view.node(NODE2)["spec"] = {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}
    found = c.run(POD_CIDR)
    assert set(only(found, "fail")) == {f"flannel.podcidr@{NODE1}", f"flannel.podcidr@{NODE2}"}
    f = found[f"flannel.podcidr@{NODE2}"]
    assert "podCIDR 10.244.1.0/24 overlaps k8s-node01's 10.244.1.0/24" in f.message
    assert f.failureModes == ["FM-27"] and "--pod-network-cidr" in commands(f)


def test_podcidr_containing_node_addresses_fails_fm27_and_fm10():
    c = Cluster()
    c.view.node(MASTER)["spec"] = {"podCIDR": "192.168.56.0/24"}
    f = c.run(POD_CIDR)[f"flannel.podcidr@{MASTER}"]
    assert f.status == "fail" and f.failureModes == ["FM-10", "FM-27"]
    assert "contains k8s-node01's InternalIP 192.168.56.102" in f.message
    assert "outside flannel's Network 10.244.0.0/16" in f.message
