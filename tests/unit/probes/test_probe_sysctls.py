"""Sysctls read under a host root; absent files are None; fallback to /proc/sys is said in source."""
from k8snetdoctor.probes import sysctls


def _proc(tmp_path, values: dict[str, str]):
    for key, value in values.items():
        p = tmp_path / sysctls.key_path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + "\n")
    return str(tmp_path)


def test_key_path():
    assert sysctls.key_path("net.bridge.bridge-nf-call-iptables") == "proc/sys/net/bridge/bridge-nf-call-iptables"


def test_values_from_host_root_with_br_netfilter_absent(tmp_path):
    root = _proc(tmp_path, {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2",
                            "net.ipv4.conf.default.rp_filter": "1", "net.netfilter.nf_conntrack_max": "131072"})
    # the bridge files are absent under this root: only these fall back to this host's /proc/sys
    values, source, problems = sysctls.read_sysctls(root, keys=("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"))
    assert values == {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2"}
    assert source == f"{tmp_path}/proc/sys" and problems == []


def test_all_keys_present_and_absent_ones(tmp_path, monkeypatch):
    root = _proc(tmp_path, {"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.rp_filter": "2",
                            "net.ipv4.conf.default.rp_filter": "1", "net.netfilter.nf_conntrack_max": "131072"})
    real = sysctls._read_file
    # make the fallback deterministic: this host's /proc/sys has no bridge files either
    monkeypatch.setattr(sysctls, "_read_file", lambda p: None if p.startswith("/proc/sys/net/bridge") else real(p))
    [e] = sysctls.collect_sysctls("n1", host_root=root)
    assert e.ok and e.kind == "sysctls" and e.node == "n1"
    assert e.data == {
        "net.ipv4.ip_forward": "0",
        "net.bridge.bridge-nf-call-iptables": None,
        "net.bridge.bridge-nf-call-ip6tables": None,
        "net.ipv4.conf.all.rp_filter": "2",
        "net.ipv4.conf.default.rp_filter": "1",
        "net.netfilter.nf_conntrack_max": "131072",
    }
    assert "absent there; read from /proc/sys: net.bridge.bridge-nf-call-iptables, net.bridge.bridge-nf-call-ip6tables" in e.source
    assert "net.bridge.bridge-nf-call-iptables = (absent)" in e.excerpt
    assert "net.ipv4.ip_forward = 0" in e.excerpt


def test_fallback_reads_this_hosts_proc_sys(tmp_path):
    # nothing under the host root: every value comes from /proc/sys, and the source says so
    [e] = sysctls.collect_sysctls("n1", host_root=str(tmp_path))
    with open("/proc/sys/net/ipv4/ip_forward") as fh:
        assert e.data["net.ipv4.ip_forward"] == fh.read().strip()
    assert e.source.startswith(f"{tmp_path}/proc/sys (absent there; read from /proc/sys: net.ipv4.ip_forward")


def test_host_root_slash_has_no_fallback_note():
    [e] = sysctls.collect_sysctls("n1", host_root="/")
    assert e.source == "/proc/sys" and e.ok
    assert set(e.data) == set(sysctls.KEYS)
