from support import ev, evset, judge
from k8snetdoctor.checks.sysctl import BRIDGE_NF, IP_FORWARD



def node_sysctls(node, ip_forward="1", bridge="1"):
    return ev("sysctls", node, {"net.ipv4.ip_forward": ip_forward,
                                "net.bridge.bridge-nf-call-iptables": bridge})


def test_ip_forward_fails_on_the_node_where_it_is_off_and_passes_elsewhere():
    found = judge(IP_FORWARD, None, evset(node_sysctls("a"), node_sysctls("b", ip_forward="0")))
    by_node = {f.scope.nodes[0]: f for f in found}
    assert by_node["a"].status == "pass"
    assert by_node["b"].status == "fail"
    assert "net.ipv4.ip_forward = 0" in by_node["b"].evidence[0].excerpt
    assert "sysctl -w net.ipv4.ip_forward=1" in by_node["b"].remediation.commands["generic"]
    assert "FM-17" in by_node["b"].failureModes


def test_bridge_nf_absent_means_module_not_loaded():
    found = judge(BRIDGE_NF, None, evset(node_sysctls("a", bridge=None)))
    assert [f.status for f in found] == ["fail"]
    assert "br_netfilter" in found[0].message
    assert found[0].remediation.summary.startswith("Load br_netfilter on a")


def test_bridge_nf_zero_fails_one_passes():
    assert judge(BRIDGE_NF, None, evset(node_sysctls("a", bridge="0")))[0].status == "fail"
    assert judge(BRIDGE_NF, None, evset(node_sysctls("a", bridge="1")))[0].status == "pass"


def test_missing_sysctl_evidence_is_a_skip_with_the_collectors_reason():
    found = judge(IP_FORWARD, None, evset(ev("sysctls", "a", error="permission denied")))
    assert [f.status for f in found] == ["skip"]
    assert "permission denied" in found[0].message
