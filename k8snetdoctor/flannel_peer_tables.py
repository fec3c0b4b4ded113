"""One node's FDB, neighbour and route entries compared with what flanneld programs for each peer.

The per-pair half of the flannel facts (flannel_facts.py holds the inventory, device and address
side): flannel.peers asks this for every node pair, so each node's tables are indexed once and
every peer is a lookup. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .flannel_facts import Peer, fdb_line, mac, neigh_line, norm_net, on_dev, route_line


# -- one node's entries for one peer ------------------------------------------------------------
def expected_lines(p: Peer, dev: str) -> dict[str, str]:
    return {"fdb": f"{p.mac} dev {dev} dst {p.public_ip} self permanent",
            "neigh": f"{p.gateway} dev {dev} lladdr {p.mac} PERMANENT",
            "route": f"{p.cidr} via {p.gateway} dev {dev} onlink"}


@dataclass
class Tables:
    """One node's FDB, neighbours and routes, indexed once so each peer is a lookup, not a scan."""

    dev: str
    fdb: list[dict]
    by_mac: dict[str, list[dict]]
    by_dst: dict[str, list[dict]]
    neigh: dict[str, list[dict]]
    routes: dict[Any, list[dict]]
    all_routes: list[dict]


def index_tables(dev: str, fdb: list[dict], neigh: list[dict], routes: list[dict]) -> Tables:
    t = Tables(dev, [e for e in fdb if on_dev(e, dev) and e.get("dst")], {}, {}, {}, {}, routes)
    for e in t.fdb:
        t.by_mac.setdefault(mac(e.get("mac")), []).append(e)
        t.by_dst.setdefault(e["dst"], []).append(e)
    for n in neigh:
        if n.get("dev") == dev:
            t.neigh.setdefault(n.get("dst"), []).append(n)
    for r in routes:
        t.routes.setdefault(norm_net(r.get("dst")), []).append(r)
    return t


@dataclass
class PairCheck:
    """Discrepancies between what a node programmed for `peer` and what the peer announces.

    `hard` problems break pod traffic to the peer; `soft` ones (a stale extra FDB entry next
    to a correct one) do not while the neighbour entry uses the current MAC. `found` holds the
    entries actually seen, `fixes` the manual commands that would set the node right.
    """

    hard: list[str]
    soft: list[str]
    found: list[str]
    fixes: list[str]
    direct: bool = False


def check_pair(t: Tables, p: Peer, own_addrs: set[str], live_macs: set[str], direct_routing: bool) -> PairCheck:
    """Compare one node's tables with what flanneld programs for peer `p`."""
    out = PairCheck(hard=[], soft=[], found=[], fixes=[])
    exp = expected_lines(p, t.dev)
    routes = t.routes.get(p.cidr, [])
    if direct_routing and any(r.get("gateway") == p.public_ip for r in routes):
        out.direct = True  # DirectRouting: same-subnet peers get a plain route, no FDB/neighbour
        return out
    if p.public_ip in own_addrs:
        out.hard.append(f"{p.name}'s public-ip {p.public_ip} is this node's own VTEP address: "
                        f"VXLAN packets for {p.name} are sent to this node itself")
    _check_fdb(out, t, p, exp["fdb"], live_macs)
    _check_neigh(out, t, p, exp["neigh"])
    _check_route(out, t.dev, p, exp["route"], routes)
    if out.hard or out.soft:  # rendering is the costly part at N² pairs: only for pairs reported
        stale = [e for e in t.by_dst.get(p.public_ip or "", []) if mac(e.get("mac")) != p.mac]
        out.found = ([f"fdb: {fdb_line(e)}" for e in t.by_mac.get(p.mac or "", []) + stale]
                     + [f"neigh: {neigh_line(e)}" for e in t.neigh.get(p.gateway, [])]
                     + [f"route: {route_line(r)}" for r in routes])
    return out


def _check_fdb(out: PairCheck, t: Tables, p: Peer, want: str, live_macs: set[str]) -> None:
    mine = t.by_mac.get(p.mac or "", [])
    stale = [e for e in t.by_dst.get(p.public_ip or "", []) if mac(e.get("mac")) not in live_macs
             and mac(e.get("mac")) != p.mac]
    if not mine:
        text = f"no FDB entry `{want}`"
        if stale:
            text += (f"; FDB has {', '.join(mac(e.get('mac')) for e in stale)} dst {p.public_ip} instead: "
                     f"a stale VTEP MAC from before {p.name}'s flannel.1 was recreated")
        out.hard.append(text)
        out.fixes.append(f"bridge fdb append {p.mac} dev {t.dev} dst {p.public_ip} self permanent")
    elif len(mine) > 1:
        out.hard.append(f"{len(mine)} FDB entries for {p.mac}: "
                        f"{'; '.join(fdb_line(e) for e in mine)} (expected exactly one `{want}`)")
    elif mine[0].get("dst") != p.public_ip:
        out.hard.append(f"FDB entry {p.mac} dst {mine[0].get('dst')}, expected dst {p.public_ip} ({p.name}'s public-ip)")
        out.fixes += [f"bridge fdb del {p.mac} dev {t.dev} dst {mine[0].get('dst')}",
                      f"bridge fdb append {p.mac} dev {t.dev} dst {p.public_ip} self permanent"]
    elif not mine[0].get("permanent"):
        out.hard.append(f"FDB entry `{fdb_line(mine[0])}` is not permanent (learned, not programmed by flanneld)")
    if mine and stale:
        out.soft.append(f"stale duplicate FDB entr{'ies' if len(stale) > 1 else 'y'} "
                        f"{', '.join(fdb_line(e) for e in stale)} next to the current {p.mac}: "
                        f"two MACs for one peer (an old VTEP MAC flanneld never removed)")
    out.fixes += [f"bridge fdb del {mac(e.get('mac'))} dev {t.dev} dst {p.public_ip}" for e in stale]


def _check_neigh(out: PairCheck, t: Tables, p: Peer, want: str) -> None:
    entries = t.neigh.get(p.gateway, [])
    if not entries:
        out.hard.append(f"no neighbour entry `{want}`")
    elif mac(entries[0].get("lladdr")) != p.mac:
        out.hard.append(f"neighbour {p.gateway} lladdr {mac(entries[0].get('lladdr'))}, "
                        f"expected lladdr {p.mac} ({p.name}'s VtepMAC annotation)")
    elif not (entries[0].get("permanent") or entries[0].get("state") == "PERMANENT"):
        out.hard.append(f"neighbour `{neigh_line(entries[0])}` is not PERMANENT")
    else:
        return
    out.fixes.append(f"ip neigh replace {p.gateway} dev {t.dev} lladdr {p.mac} nud permanent")


def _check_route(out: PairCheck, dev: str, p: Peer, want: str, routes: list[dict]) -> None:
    if not routes:
        out.hard.append(f"no route `{want}`: traffic to {p.name}'s pods follows the default route instead")
    elif not any(r.get("dev") == dev and r.get("gateway") == p.gateway and r.get("onlink") for r in routes):
        out.hard.append(f"route `{route_line(routes[0])}`, expected `{want}`")
    else:
        return
    out.fixes.append(f"ip route replace {p.cidr} via {p.gateway} dev {dev} onlink")


def orphans(t: Tables, peers: list[Peer]) -> tuple[list[str], list[str]]:
    """(lines, delete commands) for entries on the flannel device that belong to no current node.

    A route is attributed through its gateway's neighbour entry, so a route to a node whose podCIDR
    the inventory lacks (reported by flannel.podcidr) still counts as that node's.
    """
    macs, ips, cidrs = {p.mac for p in peers}, {p.public_ip for p in peers}, {p.cidr for p in peers}
    lines, fixes = [], []
    for e in t.fdb:
        if mac(e.get("mac")) not in macs and e["dst"] not in ips:
            lines.append(f"fdb: {fdb_line(e)}")
            fixes.append(f"bridge fdb del {mac(e.get('mac'))} dev {t.dev} dst {e['dst']}")
    for r in t.all_routes:
        net, gw = norm_net(r.get("dst")), r.get("gateway")
        # old flanneld versions also route the whole pod network via the device: not an orphan
        if (r.get("dev") == t.dev and net and net not in cidrs and not any(c and c.subnet_of(net) for c in cidrs)
                and not {mac(n.get("lladdr")) for n in t.neigh.get(gw, [])} & macs):
            lines.append(f"route: {route_line(r)}")
            fixes.append(f"ip route del {net} dev {t.dev}")
    return lines, fixes
