"""hostPort rules on the fixture cluster (echo pod on node01, UDP dns-cache on node02, node-exporter on
hostNetwork) and on each FM-22 / FM-23 fault derived from it."""
import copy
import json

from support import FIXTURES, ev, iptables_ev, judge

from k8snetdoctor.checks.hostport import HOSTNETWORK, PORTMAP, conf_problem, nat_rules
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import EvidenceBundle
from k8snetdoctor.rule import EvidenceSet

HP = FIXTURES / "hostport"
NODE1, NODE2 = "k8s-node01", "k8s-node02"


class Cluster:
    def __init__(self):
        b = EvidenceBundle.from_dict(json.loads((FIXTURES / "flannel" / "healthy.bundle.json").read_text()))
        self.view = ClusterView.from_dict(b.cluster)
        self.view.pods = json.loads((HP / "pods.json").read_text())["items"]
        self.cni = json.loads((HP / "cni.json").read_text())
        self.nat = {NODE1: (HP / "node01.iptables-nft-save.txt").read_text(),
                    NODE2: (HP / "node02.iptables-nft-save.txt").read_text()}
        self.sockets = json.loads((HP / "sockets.json").read_text())

    def pod(self, name):
        return next(p for p in self.view.pods if p["metadata"]["name"] == name)

    def evidence(self):
        items = [ev("cni", n, d, source="/etc/cni/net.d, /opt/cni/bin", excerpt=json.dumps(d)) for n, d in self.cni.items()]
        items += [iptables_ev(n, text) for n, text in self.nat.items()]
        items += [ev("sockets", n, d, source="/proc/net/{tcp,udp}") for n, d in self.sockets.items()]
        return EvidenceSet(items)

    def run(self, rule):
        return {f.key: f for f in judge(rule, self.view, self.evidence())}


def commands(f, platform="generic"):
    return "\n".join(f.remediation.commands[platform])


# -- hostport.portmap ----------------------------------------------------------------------------
def test_portmap_passes_where_conflist_binary_and_dnat_rules_are_all_present():
    found = Cluster().run(PORTMAP)
    assert set(found) == {f"hostport.portmap@{NODE1}", f"hostport.portmap@{NODE2}"}
    assert {f.status for f in found.values()} == {"pass"}
    f2 = found[f"hostport.portmap@{NODE2}"]
    assert "5353/UDP of pod kube-system/dns-cache-k2m7p" in f2.message
    assert "-p udp --dport 5353 -j DNAT --to-destination 10.244.2.7:53" in f2.evidence[1].excerpt


def test_no_hostport_in_use_passes_and_says_so():
    c = Cluster()
    c.view.pods = [p for p in c.view.pods if p["metadata"]["name"].startswith("web-")]
    found = c.run(PORTMAP)
    assert [f.status for f in found.values()] == ["pass"]
    assert "no non-hostNetwork pod uses a hostPort" in next(iter(found.values())).message


def test_conflist_without_portmap_fails_naming_node_pod_port_and_the_file():
    c = Cluster()
    c.cni[NODE1]["files"][0].update(plugins=["flannel"], portMappings=False)
    c.nat[NODE1] = "\n".join(l for l in c.nat[NODE1].splitlines() if "CNI-" not in l)
    found = c.run(PORTMAP)
    f = found[f"hostport.portmap@{NODE1}"]
    assert f.status == "fail" and f.failureModes == ["FM-22"]
    assert "hostPort 8080/TCP of pod default/echo-hostport-6d5f7c9b8-x2x9q (-> 10.244.1.5:80)" in f.message
    assert "10-flannel.conflist has no portmap plugin (plugins: flannel)" in f.message
    assert "no CNI-HOSTPORT-DNAT/CNI-DN-* DNAT rule for tcp/8080 -> 10.244.1.5:80" in f.message
    assert "/opt/cni/bin/portmap is missing" not in f.message
    assert '"type":"portmap","capabilities":{"portMappings":true}' in commands(f)
    assert "/etc/cni/net.d/10-flannel.conflist" in commands(f)
    assert "kubectl -n default delete pod echo-hostport-6d5f7c9b8-x2x9q" in commands(f, "k3s")
    assert found[f"hostport.portmap@{NODE2}"].status == "pass"


def test_a_conf_sorting_before_the_flannel_conflist_wins_and_hides_portmap():
    c = Cluster()
    c.cni[NODE1]["files"].insert(0, {"path": "/etc/cni/net.d/05-custom.conf", "name": "05-custom.conf", "format": "conf",
                                     "network": "mynet", "plugins": ["bridge"], "portMappings": False, "error": None})
    msg = conf_problem(c.cni[NODE1])
    assert "05-custom.conf has no portmap plugin (a single-plugin .conf (cannot chain portmap))" in msg
    assert "10-flannel.conflist has it but 05-custom.conf sorts first" in msg
    broken = copy.deepcopy(c.cni[NODE1])
    broken["files"][0]["error"] = "JSONDecodeError: Expecting value"
    assert conf_problem(broken) is None  # the runtime skips the broken file and uses 10-flannel.conflist


def test_portmap_without_the_portmappings_capability_is_named():
    c = Cluster()
    c.cni[NODE2]["files"][0]["portMappings"] = False
    f = c.run(PORTMAP)[f"hostport.portmap@{NODE2}"]
    assert f.status == "fail" and "lists portmap without capabilities" in f.message


def test_portmap_binary_missing_fails_with_the_install_command():
    c = Cluster()
    c.cni[NODE2]["binaries"].remove("portmap")
    f = c.run(PORTMAP)[f"hostport.portmap@{NODE2}"]
    assert f.status == "fail"
    assert "hostPort 5353/UDP of pod kube-system/dns-cache-k2m7p (-> 10.244.2.7:53): /opt/cni/bin/portmap is missing" in f.message
    assert "| tar -xz -C /opt/cni/bin ./portmap   # on k8s-node02" in commands(f)
    assert "apt-get install -y kubernetes-cni" in commands(f, "kubeadm")
    assert "jq '.plugins" not in commands(f)  # the conflist is fine: no edit suggested


def test_rules_missing_while_config_is_fine_fails_on_the_rules_alone():
    c = Cluster()
    c.nat[NODE1] = c.nat[NODE1].replace("-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n", "")
    f = c.run(PORTMAP)[f"hostport.portmap@{NODE1}"]
    assert f.status == "fail" and "PREROUTING does not jump to CNI-HOSTPORT-DNAT" in f.message
    assert "grep -i portmap" in commands(f)


def test_a_dn_chain_nothing_jumps_to_is_not_a_mapping():
    c = Cluster()
    c.nat[NODE1] = "\n".join(l for l in c.nat[NODE1].splitlines() if not l.startswith("-A CNI-HOSTPORT-DNAT"))
    f = c.run(PORTMAP)[f"hostport.portmap@{NODE1}"]
    assert f.status == "fail" and "CNI-DN-1d6e9a2b4c8f03e7a5b91 exists but CNI-HOSTPORT-DNAT does not jump to it" in f.message


def test_a_dnat_left_over_for_another_pod_ip_is_stale():
    c = Cluster()
    c.pod("echo-hostport-6d5f7c9b8-x2x9q")["status"]["podIP"] = "10.244.1.9"
    f = c.run(PORTMAP)[f"hostport.portmap@{NODE1}"]
    assert f.status == "fail" and "points to 10.244.1.5:80, not the pod's 10.244.1.9:80" in f.message


def test_a_dnat_for_the_other_protocol_does_not_map_the_port():
    c = Cluster()
    c.pod("echo-hostport-6d5f7c9b8-x2x9q")["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    f = c.run(PORTMAP)[f"hostport.portmap@{NODE1}"]
    assert f.status == "fail" and "no CNI-HOSTPORT-DNAT/CNI-DN-* DNAT rule for udp/8080 -> 10.244.1.5:80" in f.message


def test_portmap_nftables_backend_counts_as_mapped():
    c = Cluster()
    c.nat[NODE1] = "\n".join(l for l in c.nat[NODE1].splitlines() if "CNI-" not in l)
    ruleset = {"nftables": [{"rule": {"family": "ip", "table": "cni_hostport", "chain": "hostports", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
        {"dnat": {"addr": "10.244.1.5", "port": 80}}]}}]}
    evidence = EvidenceSet(c.evidence().items + [ev("nft-ruleset", NODE1, ruleset, source="nft -j list ruleset")])
    f = {x.key: x for x in judge(PORTMAP, c.view, evidence)}[f"hostport.portmap@{NODE1}"]
    assert f.status == "pass"


def test_nat_parser_reads_portmap_lines_with_escaped_quotes():
    rules = nat_rules((HP / "node01.iptables-nft-save.txt").read_text())
    entry = next(o for ch, o in rules if ch == "CNI-HOSTPORT-DNAT")
    assert entry == {"-p": "tcp", "--dports": "8080", "-j": "CNI-DN-1d6e9a2b4c8f03e7a5b91"}
    assert not any(ch == "FLANNEL-FWD" for ch, _ in rules)  # filter table lines are not nat rules


# -- hostport.hostnetwork ------------------------------------------------------------------------
def test_hostnetwork_hostport_passes_when_the_app_listens_on_it():
    found = Cluster().run(HOSTNETWORK)
    f = found[f"hostport.hostnetwork@{NODE1}"]
    assert f.status == "pass" and "monitoring/node-exporter-7xk2p hostPort 9100/TCP: node_exporter on [::]:9100" in f.message
    assert f.evidence[-1].excerpt == "node_exporter on [::]:9100"


def test_hostport_on_hostnetwork_that_nothing_listens_on_fails_fm23():
    """The FM-23 report: hostPort 9999 = containerPort 9999 on hostNetwork, nginx listens on 80."""
    c = Cluster()
    nginx = copy.deepcopy(c.pod("node-exporter-7xk2p"))
    nginx["metadata"].update(name="nginx-hostnet", namespace="default")
    nginx["spec"]["containers"][0]["ports"] = [{"containerPort": 9999, "hostPort": 9999, "protocol": "TCP"}]
    c.view.pods.append(nginx)
    c.sockets[NODE1].append({"proto": "tcp", "local": "0.0.0.0", "port": 80, "state": "LISTEN", "process": "nginx"})
    f = c.run(HOSTNETWORK)[f"hostport.hostnetwork@{NODE1}"]
    assert f.status == "fail" and f.failureModes == ["FM-23"]
    assert "default/nginx-hostnet hostPort 9999/TCP: nothing listens on 9999/TCP" in f.message
    assert "no reachable tcp socket on port 9999" in f.evidence[-1].excerpt
    assert "ss -ltnup | grep -w 9999   # on k8s-node01" in commands(f)


def test_hostport_different_from_containerport_on_hostnetwork_fails():
    c = Cluster()
    c.pod("node-exporter-7xk2p")["spec"]["containers"][0]["ports"][0]["hostPort"] = 19100
    f = c.run(HOSTNETWORK)[f"hostport.hostnetwork@{NODE1}"]
    assert f.status == "fail" and "hostPort 19100/TCP with containerPort 9100" in f.message


def test_listening_only_on_loopback_does_not_count():
    c = Cluster()
    next(s for s in c.sockets[NODE1] if s["port"] == 9100)["local"] = "127.0.0.1"
    assert c.run(HOSTNETWORK)[f"hostport.hostnetwork@{NODE1}"].status == "fail"


def test_without_sockets_from_the_node_it_only_warns():
    c = Cluster()
    c.sockets = {NODE2: []}
    f = c.run(HOSTNETWORK)[f"hostport.hostnetwork@{NODE1}"]
    assert f.status == "warn" and "no sockets evidence" in f.message


def test_a_port_mismatch_fails_from_the_pod_spec_alone_citing_the_inventory():
    c = Cluster()
    c.sockets = {}
    c.pod("node-exporter-7xk2p")["spec"]["containers"][0]["ports"][0]["hostPort"] = 19100
    f = c.run(HOSTNETWORK)[f"hostport.hostnetwork@{NODE1}"]
    assert f.status == "fail"
    assert f.evidence[0].evidenceId == "cluster/inventory"
    assert "hostPort 19100/TCP -> containerPort 9100" in f.evidence[0].excerpt


def test_hostnetwork_rule_passes_when_no_hostnetwork_pod_has_a_hostport():
    c = Cluster()
    c.view.pods = [p for p in c.view.pods if not p["spec"].get("hostNetwork")]
    assert [f.status for f in c.run(HOSTNETWORK).values()] == ["pass"]
