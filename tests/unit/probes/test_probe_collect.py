"""collect(): kind selection, isolation of a failing collector, node naming, host root, JSON round trip."""
import json

from k8snetdoctor.model import EvidenceBundle
from k8snetdoctor.probes import collect as collect_mod
from k8snetdoctor.probes.collect import ALL_KINDS, collect


def test_all_kinds_are_the_documented_ones():
    assert set(ALL_KINDS) == {"host", "iptables-save", "nft-ruleset", "links", "routes", "fdb", "neigh",
                              "sysctls", "sockets", "cni", "resolv"}


def test_selected_kinds_under_a_host_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/resolv.conf").write_text("nameserver 10.0.0.2\n")
    (tmp_path / "etc/hostname").write_text("ip-10-0-0-5\n")
    b = collect(host_root=str(tmp_path), node_name="worker-1", kinds=["resolv", "host", "cni"])
    assert [e.kind for e in b.evidence] == ["host", "cni", "resolv"]
    assert all(e.node == "worker-1" and e.vantage == "node" for e in b.evidence)
    host, cni, resolv = b.evidence
    assert host.data == {"hostname": "ip-10-0-0-5", "kernel": host.data["kernel"], "nodeName": "worker-1",
                         "hostRoot": str(tmp_path)}
    assert resolv.data["nameservers"] == ["10.0.0.2"]
    assert cni.ok and cni.data["files"] == []


def test_node_name_defaults_to_env_then_hostname(monkeypatch, tmp_path):
    monkeypatch.setenv("NODE_NAME", "from-env")
    assert collect(host_root=str(tmp_path), kinds=["host"]).evidence[0].node == "from-env"
    monkeypatch.delenv("NODE_NAME")
    import socket

    assert collect(host_root=str(tmp_path), kinds=["host"]).evidence[0].node == socket.gethostname()


def test_a_kind_no_collector_produces_is_an_error_item(tmp_path):
    b = collect(host_root=str(tmp_path), node_name="n", kinds=["host", "dns-answers"])
    by_kind = {e.kind: e for e in b.evidence}
    assert by_kind["host"].ok
    assert "no node collector produces evidence kind 'dns-answers'" in by_kind["dns-answers"].error


def test_a_collector_that_raises_becomes_an_error_and_others_run(monkeypatch, tmp_path):
    def boom(*a, **kw):
        raise RuntimeError("kaputt")

    monkeypatch.setattr(collect_mod, "collect_resolv", boom)
    monkeypatch.setattr(collect_mod, "collect_netlink", boom)
    b = collect(host_root=str(tmp_path), node_name="n", kinds=["routes", "fdb", "resolv", "host"])
    by_kind = {e.kind: e for e in b.evidence}
    assert set(by_kind) == {"routes", "fdb", "resolv", "host"}
    for kind in ("routes", "fdb", "resolv"):
        assert "collector raised RuntimeError: kaputt" in by_kind[kind].error
    assert by_kind["host"].ok


def test_missing_netns_gives_errors_not_a_crash():
    b = collect(node_name="n", kinds=["sysctls", "routes"], netns="ndc-does-not-exist")
    assert [e.kind for e in b.evidence] == ["routes", "sysctls"]
    assert all("does not exist" in e.error for e in b.evidence)


def test_bundle_round_trips_through_json(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/resolv.conf").write_text("nameserver 10.0.0.2\n")
    b = collect(host_root=str(tmp_path), node_name="n", kinds=["resolv", "host", "sysctls"], parallel=False)
    again = EvidenceBundle.from_dict(json.loads(b.dumps()))
    assert [e.to_dict() for e in again.evidence] == [e.to_dict() for e in b.evidence]
