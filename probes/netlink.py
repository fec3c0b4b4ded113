"""Links, routes, FDB and neighbours straight from the kernel over netlink (pyroute2).

These four tables are exactly what flanneld programs per peer node (route via the peer's
.0 address onlink, a permanent ARP entry for it, an FDB entry pointing its VTEP MAC at the
peer's node IP), so a missing or stale entry here is the cause of most "pods on node A
cannot reach pods on node B" reports. Netlink gives them structured and without parsing `ip`
output; pyroute2 is imported inside the functions so `netdoctor --help` does not pay for it.
"""
from __future__ import annotations

import socket
from typing import Any, Callable, Iterable

from k8snetdoctor.model import Evidence

from ._common import evidence

NUD_PERMANENT = 128
NTF_SELF = 2
RTNH_F_ONLINK = 4
MAIN_TABLE = 254

NUD_STATES = {0x01: "INCOMPLETE", 0x02: "REACHABLE", 0x04: "STALE", 0x08: "DELAY", 0x10: "PROBE",
              0x20: "FAILED", 0x40: "NOARP", 0x80: "PERMANENT"}
RT_PROTOS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra",
             10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
             42: "babel", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp"}
RT_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
RT_TYPES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole",
            7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat"}

SOURCES = {
    "links": "netlink RTM_GETLINK + RTM_GETADDR",
    "routes": "netlink RTM_GETROUTE family AF_INET table main",
    "fdb": "netlink RTM_GETNEIGH family AF_BRIDGE",
    "neigh": "netlink RTM_GETNEIGH family AF_INET",
}
KINDS = tuple(SOURCES)


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name) if hasattr(msg, "get_attr") else None


def _field(msg: Any, name: str, default: Any = None) -> Any:
    """A message's own header field. Not `msg.get()`: pyroute2's get() also searches attributes
    and the netlink header (whose `flags` are not the route's flags)."""
    try:
        return msg[name]
    except (KeyError, TypeError):
        return default


def nud_state(state: int) -> str:
    """`ip neigh` wording for a NUD bitmask (entries normally have one bit set)."""
    names = [n for bit, n in NUD_STATES.items() if state & bit]
    return "|".join(names) if names else "NONE"


# -- parsers: netlink messages -> evidence data (pure, unit-testable on fake messages) ----------

def parse_links(links: Iterable[Any], addrs: Iterable[Any]) -> list[dict]:
    links = list(links)
    names = {l["index"]: _attr(l, "IFLA_IFNAME") for l in links}
    by_index: dict[int, list[str]] = {}
    for a in addrs:
        addr = _attr(a, "IFA_ADDRESS") or _attr(a, "IFA_LOCAL")
        if addr:
            by_index.setdefault(a["index"], []).append(f"{addr}/{a['prefixlen']}")
    out = []
    for l in links:
        info = _attr(l, "IFLA_LINKINFO")
        kind = _attr(info, "IFLA_INFO_KIND") if info is not None else None
        vx = None
        if kind == "vxlan":
            data = _attr(info, "IFLA_INFO_DATA")
            underlay = _attr(data, "IFLA_VXLAN_LINK") if data is not None else None
            vx = {
                "id": _attr(data, "IFLA_VXLAN_ID"),
                "port": _attr(data, "IFLA_VXLAN_PORT"),
                "local": _attr(data, "IFLA_VXLAN_LOCAL") or _attr(data, "IFLA_VXLAN_LOCAL6"),
                "dev": names.get(underlay) if underlay else None,
                "learning": bool(_attr(data, "IFLA_VXLAN_LEARNING")),
            } if data is not None else {"id": None, "port": None, "local": None, "dev": None, "learning": None}
        master = _attr(l, "IFLA_MASTER")
        out.append({
            "name": names[l["index"]],
            "index": l["index"],
            "kind": kind,
            "mtu": _attr(l, "IFLA_MTU"),
            "mac": _attr(l, "IFLA_ADDRESS"),
            "state": _attr(l, "IFLA_OPERSTATE"),
            "master": names.get(master) if master else None,
            "addresses": by_index.get(l["index"], []),
            "vxlan": vx,
        })
    return out


def parse_routes(routes: Iterable[Any], names: dict[int, str]) -> list[dict]:
    out = []
    for r in routes:
        table = _attr(r, "RTA_TABLE") or _field(r, "table")
        if table != MAIN_TABLE or _field(r, "family") != socket.AF_INET:
            continue
        dst = _attr(r, "RTA_DST")
        gateway, oif, flags = _attr(r, "RTA_GATEWAY"), _attr(r, "RTA_OIF"), _field(r, "flags", 0)
        hops = _attr(r, "RTA_MULTIPATH")
        if hops:  # ECMP: report the first hop; rare on Kubernetes nodes' main table
            gateway, oif, flags = _attr(hops[0], "RTA_GATEWAY"), _field(hops[0], "oif"), _field(hops[0], "flags", 0)
        out.append({
            "dst": f"{dst}/{r['dst_len']}" if dst else "default",
            "gateway": gateway,
            "dev": names.get(oif) if oif else None,
            "onlink": bool(flags & RTNH_F_ONLINK),
            "proto": RT_PROTOS.get(_field(r, "proto"), str(_field(r, "proto"))),
            "scope": RT_SCOPES.get(_field(r, "scope"), str(_field(r, "scope"))),
            "type": RT_TYPES.get(_field(r, "type"), str(_field(r, "type"))),
        })
    return out


def parse_fdb(entries: Iterable[Any], names: dict[int, str]) -> list[dict]:
    return [{
        "mac": _attr(e, "NDA_LLADDR"),
        "dev": names.get(e["ifindex"]),
        "dst": _attr(e, "NDA_DST"),
        "permanent": bool(_field(e, "state", 0) & NUD_PERMANENT),
        "self": bool(_field(e, "flags", 0) & NTF_SELF),
    } for e in entries]


def parse_neigh(entries: Iterable[Any], names: dict[int, str]) -> list[dict]:
    return [{
        "dst": _attr(e, "NDA_DST"),
        "lladdr": _attr(e, "NDA_LLADDR"),
        "dev": names.get(e["ifindex"]),
        "permanent": bool(_field(e, "state", 0) & NUD_PERMANENT),
        "state": nud_state(_field(e, "state", 0)),
    } for e in entries]


# -- excerpts: what `ip` / `bridge` would print, so a person recognises them ---------------------

def links_excerpt(links: list[dict]) -> str:
    lines = []
    for l in links:
        head = f"{l['index']}: {l['name']}"
        if l["master"]:
            head += f" master {l['master']}"
        head += f" mtu {l['mtu']} state {l['state']} {l['kind'] or ''} link/ether {l['mac']}".replace("  ", " ")
        lines.append(head)
        vx = l["vxlan"]
        if vx:
            lines.append(f"    vxlan id {vx['id']} local {vx['local']} dev {vx['dev']} dstport {vx['port']}"
                         + ("" if vx["learning"] else " nolearning"))
        lines += [f"    inet {a}" if ":" not in a else f"    inet6 {a}" for a in l["addresses"]]
    return "\n".join(lines)


def routes_excerpt(routes: list[dict]) -> str:
    lines = []
    for r in routes:
        words = [] if r["type"] == "unicast" else [r["type"]]
        words.append(r["dst"])
        if r["gateway"]:
            words += ["via", r["gateway"]]
        if r["dev"]:
            words += ["dev", r["dev"]]
        if r["proto"] not in ("boot", "unspec"):
            words += ["proto", r["proto"]]
        if r["scope"] != "global":
            words += ["scope", r["scope"]]
        if r["onlink"]:
            words.append("onlink")
        lines.append(" ".join(words))
    return "\n".join(lines)


def fdb_excerpt(fdb: list[dict]) -> str:
    lines = []
    for f in fdb:
        words = [f["mac"] or "?", "dev", f["dev"] or "?"]
        if f["dst"]:
            words += ["dst", f["dst"]]
        if f["self"]:
            words.append("self")
        if f["permanent"]:
            words.append("permanent")
        lines.append(" ".join(words))
    return "\n".join(lines)


def neigh_excerpt(neigh: list[dict]) -> str:
    return "\n".join(f"{n['dst']} dev {n['dev']}" + (f" lladdr {n['lladdr']}" if n["lladdr"] else "")
                     + f" {n['state']}" for n in neigh)


# -- collection ----------------------------------------------------------------------------------

def _open(netns: str | None) -> Any:
    """An IPRoute socket, or one inside a named netns. flags=0: never create a missing netns."""
    if netns:
        from pyroute2 import NetNS

        return NetNS(netns, flags=0)
    from pyroute2 import IPRoute

    return IPRoute()


def _source(kind: str, netns: str | None) -> str:
    return SOURCES[kind] + (f" in netns {netns}" if netns else "")


def collect_netlink(node: str | None, netns: str | None = None,
                    kinds: Iterable[str] = KINDS) -> list[Evidence]:
    """One Evidence per requested kind, over a single netlink socket; each kind fails alone."""
    kinds = [k for k in KINDS if k in set(kinds)]
    if not kinds:
        return []
    try:
        ipr = _open(netns)
    except ImportError as exc:
        return [evidence(k, node, _source(k, netns), error=f"pyroute2 is not installed: {exc}") for k in kinds]
    except Exception as exc:  # missing netns, no permission, not Linux
        where = f"network namespace {netns!r}" if netns else "netlink"
        return [evidence(k, node, _source(k, netns), error=f"cannot open {where}: {type(exc).__name__}: {exc}")
                for k in kinds]
    out = []
    try:
        try:
            raw_links = list(ipr.get_links())
            names = {l["index"]: _attr(l, "IFLA_IFNAME") for l in raw_links}
        except Exception as exc:
            raw_links, names = None, {}
            link_error = f"RTM_GETLINK failed: {type(exc).__name__}: {exc}"
        steps: dict[str, Callable[[], tuple[list[dict], str]]] = {
            "links": lambda: _done(parse_links(raw_links, ipr.get_addr()), links_excerpt),
            "routes": lambda: _done(parse_routes(ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE), names),
                                    routes_excerpt),
            "fdb": lambda: _done(parse_fdb(ipr.get_neighbours(family=socket.AF_BRIDGE), names), fdb_excerpt),
            "neigh": lambda: _done(parse_neigh(ipr.get_neighbours(family=socket.AF_INET), names), neigh_excerpt),
        }
        for kind in kinds:
            if raw_links is None:
                out.append(evidence(kind, node, _source(kind, netns), error=link_error))
                continue
            try:
                data, excerpt = steps[kind]()
                out.append(evidence(kind, node, _source(kind, netns), data=data, excerpt=excerpt))
            except Exception as exc:
                out.append(evidence(kind, node, _source(kind, netns),
                                    error=f"{SOURCES[kind]} failed: {type(exc).__name__}: {exc}"))
    finally:
        ipr.close()
    return out


def _done(data: list[dict], excerpt_fn: Callable[[list[dict]], str]) -> tuple[list[dict], str]:
    return data, excerpt_fn(data)
