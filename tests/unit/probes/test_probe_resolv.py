"""resolv.conf parsing and reading it under a host root (symlinks re-rooted, absent file)."""
import os

from k8snetdoctor.probes import resolv

STUB = """# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
# Do not edit.
nameserver 127.0.0.53
options edns0 trust-ad
search .
"""


def test_systemd_resolved_stub():
    assert resolv.parse_resolv(STUB) == {"nameservers": ["127.0.0.53"], "search": ["."],
                                         "options": ["edns0", "trust-ad"]}


def test_plain_file_with_comments_several_nameservers_and_options():
    text = """; written by dhclient
nameserver 10.0.0.2   # VPC resolver
nameserver 1.1.1.1
nameserver 2606:4700:4700::1111
search ec2.internal corp.example
options ndots:2 timeout:1
options rotate
"""
    assert resolv.parse_resolv(text) == {
        "nameservers": ["10.0.0.2", "1.1.1.1", "2606:4700:4700::1111"],
        "search": ["ec2.internal", "corp.example"],
        "options": ["ndots:2", "timeout:1", "rotate"]}


def test_last_search_or_domain_line_wins():
    assert resolv.parse_resolv("search a.example b.example\ndomain c.example\n")["search"] == ["c.example"]
    assert resolv.parse_resolv("domain c.example\nsearch a.example b.example\n")["search"] == ["a.example", "b.example"]


def test_pod_style_resolv_conf():
    text = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    assert resolv.parse_resolv(text) == {"nameservers": ["10.96.0.10"],
                                         "search": ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                                         "options": ["ndots:5"]}


def test_empty_file():
    assert resolv.parse_resolv("") == {"nameservers": [], "search": [], "options": []}


def test_reads_under_host_root_and_follows_absolute_symlinks_there(tmp_path):
    (tmp_path / "etc").mkdir()
    stub = tmp_path / "run/systemd/resolve"
    stub.mkdir(parents=True)
    (stub / "stub-resolv.conf").write_text(STUB)
    # an absolute target must resolve under the host root, not in the probe's own filesystem
    os.symlink("/run/systemd/resolve/stub-resolv.conf", tmp_path / "etc/resolv.conf")
    [e] = resolv.collect_resolv("n1", host_root=str(tmp_path))
    assert e.ok
    assert e.data == {"path": "/etc/resolv.conf", "nameservers": ["127.0.0.53"], "search": ["."],
                      "options": ["edns0", "trust-ad"]}
    assert e.source == f"{tmp_path}/etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf"
    assert "nameserver 127.0.0.53" in e.excerpt


def test_relative_symlink(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/resolv.real").write_text("nameserver 9.9.9.9\n")
    os.symlink("resolv.real", tmp_path / "etc/resolv.conf")
    [e] = resolv.collect_resolv("n1", host_root=str(tmp_path) + "/")
    assert e.data["nameservers"] == ["9.9.9.9"]


def test_absent_file_and_dangling_symlink_are_errors(tmp_path):
    [e] = resolv.collect_resolv("n1", host_root=str(tmp_path))
    assert not e.ok and "absent" in e.error and e.data is None
    (tmp_path / "etc").mkdir()
    os.symlink("/run/systemd/resolve/stub-resolv.conf", tmp_path / "etc/resolv.conf")
    [e] = resolv.collect_resolv("n1", host_root=str(tmp_path))
    assert not e.ok and "symlink to /run/systemd/resolve/stub-resolv.conf, which is absent" in e.error


def test_dotdot_symlinks_cannot_escape_the_host_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/real.conf").write_text("nameserver 10.1.1.1\n")
    os.symlink("../../../../../etc/real.conf", tmp_path / "etc/resolv.conf")
    [e] = resolv.collect_resolv("n1", host_root=str(tmp_path))
    assert e.data["nameservers"] == ["10.1.1.1"]
