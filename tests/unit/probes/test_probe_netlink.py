"""Netlink message -> evidence parsing, on fake messages shaped like pyroute2's (no kernel needed)."""
import socket

from k8snetdoctor.probes import netlink as nl


class Msg(dict):
    """Enough of a pyroute2 nlmsg: header fields by item, attributes by get_attr."""

    def __init__(self, attrs=(), **fields):
        super().__init__(fields)
        self.attrs = dict(attrs)

    def get_attr(self, name):
        return self.attrs.get(name)


def vxlan_link():
    data = Msg({"IFLA_VXLAN_ID": 1, "IFLA_VXLAN_LINK": 2, "IFLA_VXLAN_LOCAL": "192.168.77.1",
                "IFLA_VXLAN_PORT": 8472, "IFLA_VXLAN_LEARNING": 0})
    info = Msg({"IFLA_INFO_KIND": "vxlan", "IFLA_INFO_DATA": data})
    return Msg({"IFLA_IFNAME": "flannel.1", "IFLA_MTU": 1450, "IFLA_ADDRESS": "c6:83:24:b6:82:45",
                "IFLA_OPERSTATE": "UNKNOWN", "IFLA_LINKINFO": info}, index=5)


LINKS = [
    Msg({"IFLA_IFNAME": "lo", "IFLA_MTU": 65536, "IFLA_ADDRESS": "00:00:00:00:00:00", "IFLA_OPERSTATE": "UNKNOWN"}, index=1),
    Msg({"IFLA_IFNAME": "eth0", "IFLA_MTU": 1500, "IFLA_ADDRESS": "52:54:00:00:00:01", "IFLA_OPERSTATE": "UP",
         "IFLA_LINKINFO": Msg({"IFLA_INFO_KIND": "veth"})}, index=2),
    Msg({"IFLA_IFNAME": "cni0", "IFLA_MTU": 1450, "IFLA_ADDRESS": "0a:58:0a:f4:00:01", "IFLA_OPERSTATE": "UP",
         "IFLA_LINKINFO": Msg({"IFLA_INFO_KIND": "bridge"})}, index=3),
    Msg({"IFLA_IFNAME": "veth1234", "IFLA_MTU": 1450, "IFLA_ADDRESS": "aa:aa:aa:aa:aa:aa", "IFLA_OPERSTATE": "UP",
         "IFLA_MASTER": 3, "IFLA_LINKINFO": Msg({"IFLA_INFO_KIND": "veth"})}, index=4),
    vxlan_link(),
]
ADDRS = [Msg({"IFA_ADDRESS": "127.0.0.1"}, index=1, prefixlen=8, family=socket.AF_INET),
         Msg({"IFA_ADDRESS": "192.168.77.1"}, index=2, prefixlen=24, family=socket.AF_INET),
         Msg({"IFA_ADDRESS": "10.244.0.1"}, index=3, prefixlen=24, family=socket.AF_INET),
         Msg({"IFA_ADDRESS": "10.244.0.0"}, index=5, prefixlen=32, family=socket.AF_INET),
         Msg({"IFA_ADDRESS": "fe80::1"}, index=5, prefixlen=64, family=socket.AF_INET6)]
NAMES = {1: "lo", 2: "eth0", 3: "cni0", 4: "veth1234", 5: "flannel.1"}


def test_links_with_vxlan_details_master_and_addresses():
    links = {l["name"]: l for l in nl.parse_links(LINKS, ADDRS)}
    assert links["flannel.1"] == {
        "name": "flannel.1", "index": 5, "kind": "vxlan", "mtu": 1450, "mac": "c6:83:24:b6:82:45",
        "state": "UNKNOWN", "master": None, "addresses": ["10.244.0.0/32", "fe80::1/64"],
        "vxlan": {"id": 1, "port": 8472, "local": "192.168.77.1", "dev": "eth0", "learning": False}}
    assert links["veth1234"]["master"] == "cni0" and links["veth1234"]["vxlan"] is None
    assert links["lo"]["kind"] is None and links["cni0"]["addresses"] == ["10.244.0.1/24"]
    text = nl.links_excerpt(list(links.values()))
    assert "vxlan id 1 local 192.168.77.1 dev eth0 dstport 8472 nolearning" in text
    assert "4: veth1234 master cni0 mtu 1450" in text


def test_routes_main_table_onlink_proto_scope():
    routes = [
        Msg({"RTA_TABLE": 254, "RTA_GATEWAY": "192.168.77.254", "RTA_OIF": 2}, family=2, dst_len=0, table=254,
            proto=16, scope=0, type=1, flags=0),
        Msg({"RTA_TABLE": 254, "RTA_DST": "10.244.1.0", "RTA_GATEWAY": "10.244.1.0", "RTA_OIF": 5}, family=2,
            dst_len=24, table=254, proto=3, scope=0, type=1, flags=4),
        Msg({"RTA_TABLE": 254, "RTA_DST": "10.244.0.0", "RTA_PREFSRC": "10.244.0.1", "RTA_OIF": 3}, family=2,
            dst_len=24, table=254, proto=2, scope=253, type=1, flags=0),
        Msg({"RTA_TABLE": 254, "RTA_DST": "10.244.9.0"}, family=2, dst_len=26, table=254, proto=12, scope=0,
            type=6, flags=0),
        Msg({"RTA_TABLE": 255, "RTA_DST": "127.0.0.1", "RTA_OIF": 1}, family=2, dst_len=32, table=255, proto=2,
            scope=254, type=2, flags=0),  # local table: not ours
    ]
    got = nl.parse_routes(routes, NAMES)
    assert got == [
        {"dst": "default", "gateway": "192.168.77.254", "dev": "eth0", "onlink": False, "proto": "dhcp",
         "scope": "global", "type": "unicast"},
        {"dst": "10.244.1.0/24", "gateway": "10.244.1.0", "dev": "flannel.1", "onlink": True, "proto": "boot",
         "scope": "global", "type": "unicast"},
        {"dst": "10.244.0.0/24", "gateway": None, "dev": "cni0", "onlink": False, "proto": "kernel",
         "scope": "link", "type": "unicast"},
        {"dst": "10.244.9.0/26", "gateway": None, "dev": None, "onlink": False, "proto": "bird",
         "scope": "global", "type": "blackhole"},
    ]
    assert nl.routes_excerpt(got).splitlines() == [
        "default via 192.168.77.254 dev eth0 proto dhcp",
        "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
        "10.244.0.0/24 dev cni0 proto kernel scope link",
        "blackhole 10.244.9.0/26 proto bird",
    ]


def test_route_flags_are_the_route_flags_not_the_netlink_header_flags():
    # pyroute2 messages carry a header dict whose flags (NLM_F_MULTI=2) must not be read as RTNH flags
    r = Msg({"RTA_TABLE": 254, "RTA_DST": "10.0.0.0", "RTA_OIF": 2}, family=2, dst_len=8, table=254, proto=4,
            scope=0, type=1, flags=0, header={"flags": 6})
    assert nl.parse_routes([r], NAMES)[0]["onlink"] is False


def test_multipath_route_reports_first_hop():
    hop = Msg({"RTA_GATEWAY": "10.0.0.1"}, oif=2, flags=4)
    r = Msg({"RTA_TABLE": 254, "RTA_MULTIPATH": [hop]}, family=2, dst_len=0, table=254, proto=4, scope=0,
            type=1, flags=0)
    assert nl.parse_routes([r], NAMES)[0] | {} == {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0",
                                                  "onlink": True, "proto": "static", "scope": "global",
                                                  "type": "unicast"}


def test_fdb_flags():
    entries = [Msg({"NDA_LLADDR": "0a:58:0a:f4:01:00", "NDA_DST": "192.168.77.2"}, ifindex=5, state=192, flags=2),
               Msg({"NDA_LLADDR": "aa:aa:aa:aa:aa:aa", "NDA_MASTER": 3}, ifindex=4, state=2, flags=0)]
    got = nl.parse_fdb(entries, NAMES)
    assert got == [{"mac": "0a:58:0a:f4:01:00", "dev": "flannel.1", "dst": "192.168.77.2", "permanent": True, "self": True},
                   {"mac": "aa:aa:aa:aa:aa:aa", "dev": "veth1234", "dst": None, "permanent": False, "self": False}]
    assert nl.fdb_excerpt(got).splitlines()[0] == "0a:58:0a:f4:01:00 dev flannel.1 dst 192.168.77.2 self permanent"


def test_neighbours_and_states():
    entries = [Msg({"NDA_DST": "10.244.1.0", "NDA_LLADDR": "0a:58:0a:f4:01:00"}, ifindex=5, state=128, flags=0),
               Msg({"NDA_DST": "192.168.77.254", "NDA_LLADDR": "52:54:00:12:34:56"}, ifindex=2, state=2, flags=0),
               Msg({"NDA_DST": "192.168.77.9"}, ifindex=2, state=32, flags=0)]
    got = nl.parse_neigh(entries, NAMES)
    assert [(n["dst"], n["dev"], n["permanent"], n["state"]) for n in got] == [
        ("10.244.1.0", "flannel.1", True, "PERMANENT"), ("192.168.77.254", "eth0", False, "REACHABLE"),
        ("192.168.77.9", "eth0", False, "FAILED")]
    assert nl.neigh_excerpt(got).splitlines() == [
        "10.244.1.0 dev flannel.1 lladdr 0a:58:0a:f4:01:00 PERMANENT",
        "192.168.77.254 dev eth0 lladdr 52:54:00:12:34:56 REACHABLE",
        "192.168.77.9 dev eth0 FAILED"]
    assert nl.nud_state(0) == "NONE" and nl.nud_state(192) == "NOARP|PERMANENT"


def test_missing_netns_is_an_error_per_kind_and_never_created():
    import os

    got = nl.collect_netlink("n1", netns="ndc-definitely-absent", kinds=("routes", "fdb"))
    assert [e.kind for e in got] == ["routes", "fdb"]
    assert all(not e.ok and "cannot open network namespace 'ndc-definitely-absent'" in e.error for e in got)
    assert not os.path.exists("/var/run/netns/ndc-definitely-absent")
