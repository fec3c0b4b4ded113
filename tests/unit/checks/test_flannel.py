"""flannel rules on a healthy 3-node Vagrant cluster and on each fault derived from it.

Every fault function below is the healthy fixture plus exactly the change that reproduces one
failure mode of knowledge/failure-modes.md, so a test reads as "this change -> this verdict".
"""
import json
import re

import pytest
from support import FIXTURES, ev, evset, judge

from k8snetdoctor.checks.flannel import MTU, VTEP_ADDRESS, VXLAN_DEVICE
from k8snetdoctor.checks.flannel_peers import PEERS, POD_CIDR
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import EvidenceBundle
from k8snetdoctor.rule import EvidenceSet

FL = FIXTURES / "flannel"
MASTER, NODE1, NODE2 = "k8s-master01", "k8s-node01", "k8s-node02"
MAC = {MASTER: "4e:91:11:87:85:f8", NODE1: "ce:cf:6f:d7:c9:4c", NODE2: "a2:05:9f:ac:40:da"}
ALL = (VXLAN_DEVICE, VTEP_ADDRESS, PEERS, MTU, POD_CIDR)


class Cluster:
    """The healthy fixture, freshly loaded, with accessors for the tables faults edit."""

    def __init__(self):
        b = EvidenceBundle.from_dict(json.loads((FL / "healthy.bundle.json").read_text()))
        self.view, self.evidence = ClusterView.from_dict(b.cluster), b.evidence

    def data(self, kind, node):
        return next(e for e in self.evidence if e.kind == kind and e.node == node).data

    def link(self, node, name):
        return next(l for l in self.data("links", node) if l["name"] == name)

    def ann(self, node):
        return self.view.node(node)["metadata"]["annotations"]

    def run(self, rule):
        return {f.key: f for f in judge(rule, self.view, EvidenceSet(self.evidence))}


def only(findings, status):
    return {k: f for k, f in findings.items() if f.status == status}


def commands(f):
    return "\n".join(c for cmds in f.remediation.commands.values() for c in cmds)


# -- faults ------------------------------------------------------------------------------------
def vagrant_nat(c):
    """FM-05: flannel took the default-route NIC enp0s3 (10.0.2.15 on every VM); kubelet has --node-ip."""
    for n in (MASTER, NODE1, NODE2):
        c.link(n, "flannel.1")["vxlan"].update(local="10.0.2.15", dev="enp0s3")
        c.ann(n)["flannel.alpha.coreos.com/public-ip"] = "10.0.2.15"
        for e in c.data("fdb", n):
            if e["dev"] == "flannel.1":
                e["dst"] = "10.0.2.15"


def wrong_nic_on_node1(c):
    """FM-06: only node01's flannel uses the NAT NIC while kubelet's InternalIP is on enp0s8."""
    c.link(NODE1, "flannel.1")["vxlan"].update(local="10.0.2.15", dev="enp0s3")
    c.ann(NODE1)["flannel.alpha.coreos.com/public-ip"] = "10.0.2.15"
    for n in (MASTER, NODE2):
        next(e for e in c.data("fdb", n) if e["mac"] == MAC[NODE1])["dst"] = "10.0.2.15"


def overwrite_not_applied(c):
    """FM-07: public-ip-overwrite set on node02 (NAT address), flanneld not restarted since."""
    c.ann(NODE2)["flannel.alpha.coreos.com/public-ip-overwrite"] = "203.0.113.30"


def hand_edited_public_ip(c):
    """FM-07: node02's public-ip edited by hand to an address that is not its VTEP; peers still use .103."""
    c.ann(NODE2)["flannel.alpha.coreos.com/public-ip"] = "192.168.56.130"


# -- flannel.vxlan-device ----------------------------------------------------------------------
def test_vxlan_device_passes_on_every_healthy_node():
    found = Cluster().run(VXLAN_DEVICE)
    assert {f.status for f in found.values()} == {"pass"} and len(found) == 3
    assert "vxlan id 1 dstport 8472" in found[f"flannel.vxlan-device@{NODE1}"].message


def test_vxlan_device_missing_on_one_node_fails_there_only():
    c = Cluster()
    c.data("links", NODE2)[:] = [l for l in c.data("links", NODE2) if l["name"] != "flannel.1"]
    found = c.run(VXLAN_DEVICE)
    bad = only(found, "fail")
    assert list(bad) == [f"flannel.vxlan-device@{NODE2}"]
    f = bad[f"flannel.vxlan-device@{NODE2}"]
    assert "flannel.1 is missing" in f.message and f.failureModes == ["FM-11"]
    assert "--field-selector spec.nodeName=k8s-node02" in commands(f)


def test_vxlan_device_port_differing_from_peers_fails_naming_both_ports():
    c = Cluster()
    c.link(NODE1, "flannel.1")["vxlan"]["port"] = 4789
    f = c.run(VXLAN_DEVICE)[f"flannel.vxlan-device@{NODE1}"]
    assert f.status == "fail" and "dstport 4789, expected 8472" in f.message
    assert f.failureModes == ["FM-01"] and "dstport 4789" in f.evidence[0].excerpt


def test_vxlan_device_vni_announced_differently_fails_b4_3():
    """B4-3 / k3s#9295: one node announces VNI 4096 (Windows-compatible) while the cluster uses 1."""
    c = Cluster()
    c.ann(NODE2)["flannel.alpha.coreos.com/backend-data"] = '{"VNI":4096,"VtepMAC":"a2:05:9f:ac:40:da"}'
    c.link(NODE2, "flannel.1").update(name="flannel.4096")
    c.link(NODE2, "flannel.4096")["vxlan"]["id"] = 4096
    f = c.run(VXLAN_DEVICE)[f"flannel.vxlan-device@{NODE2}"]
    assert f.status == "fail" and "announces VNI 4096 while the cluster uses 1" in f.message


def test_flannel_rules_skip_with_reason_when_cluster_is_not_flannel_vxlan():
    c = Cluster()
    c.view.configMaps[0]["data"]["net-conf.json"] = '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}'
    for n in (MASTER, NODE1, NODE2):  # flanneld runs host-gw; net-conf.json was edited but never re-read
        c.ann(n)["flannel.alpha.coreos.com/backend-type"] = "host-gw"
        c.data("links", n)[:] = [l for l in c.data("links", n) if l["kind"] != "vxlan"]
    found = c.run(PEERS)
    assert [f.status for f in found.values()] == ["skip"]
    assert "flannel backend is host-gw, not vxlan" in next(iter(found.values())).message
    c.view.configMaps.clear()
    for n in (MASTER, NODE1, NODE2):
        c.view.node(n)["metadata"]["annotations"] = {}
    assert "does not use flannel" in next(iter(c.run(VTEP_ADDRESS).values())).message


# -- flannel.vtep-address ----------------------------------------------------------------------
def test_vtep_address_passes_when_local_internal_ip_and_public_ip_agree():
    found = Cluster().run(VTEP_ADDRESS)
    assert {f.status for f in found.values()} == {"pass"} and len(found) == 3
    assert "VTEP 192.168.56.102 on enp0s8" in found[f"flannel.vtep-address@{NODE1}"].message


def test_vagrant_all_nodes_on_10_0_2_15_is_one_fm05_finding_with_the_iface_fix():
    c = Cluster()
    vagrant_nat(c)
    found = c.run(VTEP_ADDRESS)
    assert list(found) == [f"flannel.vtep-address@{MASTER},{NODE1},{NODE2}"]
    f = next(iter(found.values()))
    assert f.status == "fail" and f.failureModes == ["FM-05"]
    assert "all use 10.0.2.15" in f.message and "Vagrant NAT" in f.message and "enp0s3" in f.message
    assert "k8s-node01=192.168.56.102" in f.message
    assert "FLANNELD_IFACE=enp0s8" in commands(f) and "flannel-iface: enp0s8" in commands(f)


def test_flannel_on_another_nic_than_kubelet_is_fm06_naming_both_addresses():
    c = Cluster()
    wrong_nic_on_node1(c)
    found = c.run(VTEP_ADDRESS)
    f = found[f"flannel.vtep-address@{NODE1}"]
    assert f.status == "fail" and f.failureModes == ["FM-06"]
    assert "flannel.1 local 10.0.2.15 (dev enp0s3) is not the InternalIP 192.168.56.102 (on enp0s8)" in f.message
    assert "FLANNELD_IFACE=enp0s8" in commands(f) and "node-ip: 192.168.56.102" in commands(f)
    assert found[f"flannel.vtep-address@{MASTER}"].status == "pass"


def test_public_ip_overwrite_not_yet_applied_is_fm07():
    c = Cluster()
    overwrite_not_applied(c)
    f = c.run(VTEP_ADDRESS)[f"flannel.vtep-address@{NODE2}"]
    assert f.status == "fail" and f.failureModes == ["FM-07"]
    assert "public-ip-overwrite is 203.0.113.30 but public-ip is still 192.168.56.103" in f.message
    assert "send VXLAN for k8s-node02 (VtepMAC a2:05:9f:ac:40:da) to 192.168.56.103" in f.message
    assert "--field-selector spec.nodeName=k8s-node02" in commands(f)


def test_public_ip_not_what_peers_use_is_fm07_with_both_addresses():
    c = Cluster()
    hand_edited_public_ip(c)
    f = c.run(VTEP_ADDRESS)[f"flannel.vtep-address@{NODE2}"]
    assert f.status == "fail" and f.failureModes == ["FM-07"]
    assert "public-ip annotation 192.168.56.130 is not flannel.1's local address 192.168.56.103" in f.message
    assert "peers k8s-master01, k8s-node01 send VXLAN for k8s-node02" in f.message
    assert "public-ip-overwrite=192.168.56.103" in commands(f)
    assert "k8s-master01: fdb a2:05:9f:ac:40:da dst 192.168.56.103" in f.evidence[0].excerpt


# -- flannel.mtu -------------------------------------------------------------------------------
def test_mtu_passes_at_exactly_underlay_minus_50():
    found = Cluster().run(MTU)
    assert {f.status for f in found.values()} == {"pass"} and len(found) == 3
    assert "limit 1500 - 50 = 1450" in found[f"flannel.mtu@{MASTER}"].message


def test_overlay_mtu_bigger_than_underlay_allows_fails_with_the_right_value():
    c = Cluster()
    c.link(NODE2, "enp0s8")["mtu"] = 1400  # underlay shrank (VPN / OpenStack tenant net)
    found = c.run(MTU)
    f = found[f"flannel.mtu@{NODE2}"]
    assert f.status == "fail" and f.failureModes == ["FM-08"]
    assert "flannel.1 mtu 1450, enp0s8 mtu 1400 (limit 1400 - 50 = 1350)" in f.message
    assert "ip link set dev flannel.1 mtu 1350   # on k8s-node02; immediate, lost on flannel restart" in commands(f)
    assert found[f"flannel.mtu@{NODE1}"].status == "pass"


def test_b2_1_flannel_1500_on_a_9001_nic_is_legal_but_wasteful():
    text = (FL / "b2-1-aws-mtu.ip-link.txt").read_text()
    vx = re.search(r"mtu (\d+).*?vxlan id (\d+) local (\S+) dev (\S+) .*?dstport (\d+)", text, re.S)
    eth = re.search(r"eth0: .*? mtu (\d+)", text)
    links = [{"name": "flannel.1", "index": 6, "kind": "vxlan", "mtu": int(vx[1]), "addresses": [],
              "vxlan": {"id": int(vx[2]), "local": vx[3], "dev": vx[4], "port": int(vx[5]), "learning": False}},
             {"name": "eth0", "index": 2, "kind": None, "mtu": int(eth[1]), "addresses": ["172.31.12.123/20"], "vxlan": None}]
    found = judge(MTU, None, evset(ev("links", "ip-172-31-12-123", links, excerpt=text)))
    assert [f.status for f in found] == ["warn"] and found[0].severity == "low"
    assert "flannel.1 mtu 1500, eth0 mtu 9001 (limit 9001 - 50 = 8951)" in found[0].message
    assert "ip link set dev flannel.1 mtu 8951" in commands(found[0])


def test_mtu_differing_between_nodes_warns_listing_each():
    c = Cluster()
    c.link(NODE2, "enp0s8")["mtu"] = 1450
    for name in ("flannel.1", "cni0"):
        c.link(NODE2, name)["mtu"] = 1400
    found = c.run(MTU)
    f = found[f"flannel.mtu@{MASTER},{NODE1},{NODE2}"]
    assert f.status == "warn" and "k8s-master01=1450, k8s-node01=1450, k8s-node02=1400" in f.message
    assert found[f"flannel.mtu@{NODE2}"].status == "pass"


@pytest.mark.parametrize("rule", ALL, ids=lambda r: r.id)
def test_every_flannel_rule_skips_when_its_evidence_is_missing(rule):
    c = Cluster()
    assert {f.status for f in judge(rule, None if rule.needs[0] == "cluster" else c.view, evset())} == {"skip"}
