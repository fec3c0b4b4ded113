"""The moves faults make on a lab node's dataplane, each with its exact undo.

iptables is never patched rule by rule: a node's tables are recomputed whole from the lab's
owners (security group, kube-proxy from the view that node's kube-proxy believes, flannel,
portmap) plus the edits every active fault records, and loaded with one iptables-restore.
So faults compose (two DROPs on one node, a stale kube-proxy next to a closed port) and clearing
one puts back exactly the rules a fresh `lab up` would have, in the same order.
Everything else (links, FDB, sysctls, files, processes) is a small do/undo pair.
"""
from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from k8snetdoctor.lab import flannel, kubeproxy_rules, netns, portmap, procs, sg
from k8snetdoctor.lab.rules import Ruleset, comment

if TYPE_CHECKING:  # pragma: no cover
    from k8snetdoctor.lab.lab import Lab
    from k8snetdoctor.lab.state import ProcRecord

FAULT_PRIORITY = -100       # fault rules go ahead of every owner's rules in a chain
LEGACY_RESTORE = "iptables-legacy-restore"
OWNERS = {"portmap": portmap.owns}


# -- iptables edits a fault records (plain dicts: they live in the state file) ----------------------
def insert(node: str, table: str, chain: str, spec: str) -> dict[str, Any]:
    """A rule put at the head of `chain` on `node`."""
    return {"node": node, "op": "insert", "table": table, "chain": chain, "rule": spec}


def flush(node: str, table: str, chain: str) -> dict[str, Any]:
    """`chain` kept but emptied on `node` (as `iptables -F` leaves it)."""
    return {"node": node, "op": "flush", "table": table, "chain": chain}


def without(node: str, owner: str) -> dict[str, Any]:
    """An owner's chains absent on `node` (portmap never ran there)."""
    if owner not in OWNERS:
        raise ValueError(f"unknown rule owner {owner!r}")
    return {"node": node, "op": "without", "owner": owner}


def frozen(node: str) -> dict[str, Any]:
    """kube-proxy on `node` stopped before this fault's view changes: it never saw them."""
    return {"node": node, "op": "kube-proxy-frozen"}


def sg_rule(note: str, *, source: str | None = None, not_source: str | None = None, proto: str | None = None,
            dport: int | None = None, orig_dport: int | None = None, target: str = "DROP") -> str:
    """One LAB-SG rule. orig_dport matches the port before DNAT, like a security group sees it."""
    words = []
    if source:
        words.append(f"-s {source if '/' in source else source + '/32'}")
    if not_source:
        words.append(f"! -s {not_source}")
    if proto:
        words.append(f"-p {proto}")
        if dport:
            words.append(f"-m {proto} --dport {dport}")
    if orig_dport:
        words.append(f"-m conntrack --ctorigdstport {orig_dport}")
    words += [comment(f"lab fault {note}"), f"-j {target}"]
    return " ".join(words)


def sg_insert(node: str, note: str, **kw: Any) -> dict[str, Any]:
    return insert(node, "filter", sg.CHAIN, sg_rule(note, **kw))


# -- recomputing a node's tables -----------------------------------------------------------------
def node_ruleset(lab: "Lab", node: str, records: Sequence[dict[str, Any]]) -> Ruleset:
    """What `node`'s iptables (nft backend) must hold with `records` active."""
    edits = [e for r in records for e in r.get("iptables") or [] if e.get("node") == node]
    stale = {r["name"] for r in records if any(e["op"] == "kube-proxy-frozen" for e in r.get("iptables") or []
                                               if e.get("node") == node)}
    view = lab.view()
    kp_view = lab.view(without_faults=stale) if stale else view
    spec = lab.spec
    cidr_of = {p.ip: spec.node(p.node).pod_cidr for p in spec.pods}
    dropped = {e["owner"] for e in edits if e["op"] == "without"}
    parts = [sg.ruleset(), kubeproxy_rules.ruleset(kp_view, node), flannel.masq_ruleset(spec.node(node))]
    if "portmap" not in dropped:
        parts.append(portmap.ruleset(portmap.mappings(view, node), cidr_of))
    rs = Ruleset().merge(*parts)
    for e in edits:
        if e["op"] == "insert":
            rs.add(e["table"], e["chain"], e["rule"], FAULT_PRIORITY)
        elif e["op"] == "flush":
            rs.table(e["table"]).declare(e["chain"])
            rs.table(e["table"]).rules[e["chain"]] = []
    return rs


def reconcile(lab: "Lab", nodes: Iterable[str] | None = None) -> None:
    """Load every given node's tables as the active faults say (all nodes by default)."""
    records = lab.faults()
    targets = list(nodes) if nodes is not None else lab.spec.node_names

    def load(node: str) -> None:
        text = node_ruleset(lab, node, records).render(f"netdoctor lab {lab.name} {node}")
        netns.iptables_restore(lab.node_ns(node), text)

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(targets)))) as ex:
        for fut in [ex.submit(load, n) for n in targets]:
            fut.result()


def touched_nodes(record: dict[str, Any]) -> set[str]:
    return {e["node"] for e in record.get("iptables") or []}


# -- the legacy backend (a split brain needs a second copy there) ---------------------------------
def legacy_load(lab: "Lab", node: str, text: str) -> None:
    netns.require(LEGACY_RESTORE)
    netns.iptables_restore(lab.node_ns(node), text, binary=LEGACY_RESTORE)


def legacy_flush(lab: "Lab", node: str) -> None:
    """Empty every legacy table kube-proxy writes (restore without --noflush clears each table named)."""
    text = "".join(f"*{t}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in chains) + "COMMIT\n"
                   for t, chains in (("mangle", ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")),
                                     ("filter", ("INPUT", "FORWARD", "OUTPUT")),
                                     ("nat", ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"))))
    netns.iptables_restore(lab.node_ns(node), text, binary=LEGACY_RESTORE)


# -- flannel's per-peer entries -------------------------------------------------------------------
def fdb_move(lab: "Lab", on: str, mac: str, old_dst: str, new_dst: str) -> None:
    """Point `on`'s FDB entry for VTEP `mac` at another underlay address."""
    netns.bridge_batch(lab.node_ns(on), [f"fdb del {mac} dev {flannel.DEV} dst {old_dst}"], force=True)
    netns.bridge_batch(lab.node_ns(on), [f"fdb append {mac} dev {flannel.DEV} dst {new_dst}"])


def peer_entries(lab: "Lab", on: str, peer: str, present: bool) -> None:
    """Add or remove the route, neighbour and FDB entry flanneld on `on` keeps for `peer`."""
    p = lab.spec.node(peer)
    if present:
        netns.ip_batch(lab.node_ns(on), flannel.peer_ip_lines(p))
        netns.bridge_batch(lab.node_ns(on), flannel.peer_fdb_lines(p), force=True)
    else:
        netns.ip_batch(lab.node_ns(on), flannel.peer_ip_lines(p, "del"), force=True)
        netns.bridge_batch(lab.node_ns(on), flannel.peer_fdb_lines(p, "del"), force=True)


def vtep_device(lab: "Lab", node: str, present: bool) -> None:
    """flannel.1 on `node` with all its peer entries, or none of it (flanneld never started)."""
    ns = lab.node_ns(node)
    if not present:
        netns.ip_batch(ns, [f"link del {flannel.DEV}"], force=True)
        return
    n = lab.spec.node(node)
    netns.ip_batch(ns, flannel.link_lines(n))
    for peer in lab.spec.nodes:
        if peer.name != node:
            peer_entries(lab, node, peer.name, True)


def set_mtu(lab: "Lab", node: str, dev: str, mtu: int) -> None:
    netns.ip_batch(lab.node_ns(node), [f"link set dev {dev} mtu {mtu}"])


def set_sysctl(lab: "Lab", node: str, key: str, value: str | int) -> None:
    netns.sysctl(lab.node_ns(node), {key: value})


def sysctl_in_netns(lab: "Lab", node: str, key: str) -> bool:
    """Does this kernel give `key` to each network namespace? (net.bridge.* did not before 5.3.)"""
    return netns.run(["test", "-e", "/proc/sys/" + key.replace(".", "/")], ns=lab.node_ns(node),
                     check=False).returncode == 0


# -- files a node's probe reads --------------------------------------------------------------------
def write_file(path: Path, text: str, symlink_to: str | None = None) -> None:
    """Replace `path` by `text`, or by a symlink (how systemd-resolved installs /etc/resolv.conf)."""
    if path.is_symlink() or path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if symlink_to:
        path.symlink_to(symlink_to)
    else:
        path.write_text(text)


# -- processes -------------------------------------------------------------------------------------
def start(lab: "Lab", ns: str, role: str, name: str, argv: list[str], ports: list[str]) -> "ProcRecord":
    rec = procs.start(lab.state, ns, role, name, argv, ports, lab.names.log_dir)
    try:
        procs.wait_ready([rec])
    except BaseException:
        stop(lab, name)
        raise
    return rec


def stop(lab: "Lab", name: str) -> None:
    """Stop every recorded process called `name` and forget it."""
    for rec in [r for r in lab.state.processes if r.name == name]:
        procs.stop([rec])
        lab.state.drop_process(rec.pid)


def restart(lab: "Lab", name: str, argv: list[str]) -> "ProcRecord":
    """Run process `name` again with another command line (its namespace, role and ports kept)."""
    old = lab.process(name)
    stop(lab, name)
    return start(lab, old.ns, old.role, old.name, argv, list(old.ports))


def argv_text(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
