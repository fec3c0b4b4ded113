"""/proc/net/{tcp,udp}[6] parsing: hex addresses, states, and inode -> process mapping."""
import os

import pytest

from k8snetdoctor.probes import sockets

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:2802 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   2: 0A00020F:0016 0A000202:C35A 01 00000000:00000000 02:0008E3D3 00000000     0        0 5555 2 0000000000000000 20 4 30 10 -1
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 778 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 779 1 0000000000000000 100 0 0 10 0
"""
UDP = """   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:2118 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9001 2 0000000000000000 0
  101: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 9002 2 0000000000000000 0
  102: 0F02000A:D431 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 9003 2 0000000000000000 0
"""


@pytest.mark.parametrize("hexaddr,expected", [
    ("0100007F:0016", ("127.0.0.1", 22)),
    ("00000000:2802", ("0.0.0.0", 10242)),
    ("0A00020F:0016", ("15.2.0.10", 22)),
    ("3500007F:0035", ("127.0.0.53", 53)),
    ("00000000000000000000000000000000:1F90", ("::", 8080)),
    ("00000000000000000000000001000000:0035", ("::1", 53)),
    ("0000000000000000FFFF00000100007F:1F91", ("::ffff:127.0.0.1", 8081)),
    ("B80D0120000000000000000001000000:01BB", ("2001:db8::1", 443)),
])
def test_decode_addr(hexaddr, expected):
    assert sockets.decode_addr(hexaddr) == expected


def test_tcp_keeps_only_listeners():
    got = sockets.parse_proc_net(TCP, "tcp")
    assert [(s["local"], s["port"], s["state"], s["inode"]) for s in got] == [
        ("0.0.0.0", 10242, "LISTEN", 31337), ("127.0.0.1", 22, "LISTEN", 4242)]


def test_tcp6_listeners():
    got = sockets.parse_proc_net(TCP6, "tcp")
    assert [(s["local"], s["port"]) for s in got] == [("::", 8080), ("::1", 53), ("::ffff:127.0.0.1", 8081)]


def test_udp_keeps_unconnected_sockets_only():
    got = sockets.parse_proc_net(UDP, "udp")
    assert [(s["proto"], s["local"], s["port"], s["state"]) for s in got] == [
        ("udp", "0.0.0.0", 8472, "UNCONN"), ("udp", "127.0.0.53", 53, "UNCONN")]


def test_garbage_lines_are_skipped():
    assert sockets.parse_proc_net("header\nnot a socket line\n  0: zz:zz 0 0A 0 0 0 0 0 0\n", "tcp") == []


def test_socket_owners_from_a_fake_proc(tmp_path):
    for pid, comm, links in [("100", "kubelet", ["socket:[31337]", "/dev/null"]),
                             ("200", "coredns", ["socket:[9002]", "pipe:[1]"]),
                             ("self", "ignored", ["socket:[4242]"])]:
        fd = tmp_path / pid / "fd"
        fd.mkdir(parents=True)
        (tmp_path / pid / "comm").write_text(comm + "\n")
        for i, target in enumerate(links):
            os.symlink(target, fd / str(i))
    owners = sockets.socket_owners({31337, 9002, 4242}, proc=str(tmp_path))
    assert owners == {31337: "kubelet", 9002: "coredns"}
    assert sockets.socket_owners(set(), proc=str(tmp_path)) == {}


def test_collect_on_this_host_finds_a_socket_we_open():
    import socket as s

    srv = s.socket(s.AF_INET, s.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        [e] = sockets.collect_sockets("n1")
    finally:
        srv.close()
    assert e.ok, e.error
    mine = [x for x in e.data if x["proto"] == "tcp" and x["port"] == port]
    assert mine == [{"proto": "tcp", "local": "127.0.0.1", "port": port, "state": "LISTEN",
                     "process": mine[0]["process"]}]
    assert mine[0]["process"]  # our own process is always visible
    assert f"127.0.0.1:{port}" in e.excerpt
