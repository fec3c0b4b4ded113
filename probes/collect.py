"""Run the node collectors and gather their evidence into one bundle.

This is what `netdoctor probe collect` runs on a node, in the probe DaemonSet (host_root
"/host") and, with `netns`, inside a lab node's network namespace. Each collector is isolated:
one that raises becomes an error Evidence and the others still run, because a partial bundle
(say, everything but nft) still lets most rules judge. Nothing here writes to the node.
"""
from __future__ import annotations

import os
import socket
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from k8snetdoctor import __version__
from k8snetdoctor.model import Evidence, EvidenceBundle

from ._common import evidence
from .cni import collect_cni
from .host import collect_host
from .iptables import collect_iptables
from .netlink import KINDS as NETLINK_KINDS
from .netlink import collect_netlink
from .nft import collect_nft
from .resolv import collect_resolv
from .sockets import collect_sockets
from .sysctls import collect_sysctls

ALL_KINDS: tuple[str, ...] = ("host", "iptables-save", "nft-ruleset", *NETLINK_KINDS,
                              "sysctls", "sockets", "cni", "resolv")


def default_node_name() -> str:
    """$NODE_NAME (the DaemonSet sets it from spec.nodeName), else the host name."""
    return os.environ.get("NODE_NAME") or socket.gethostname()


def _jobs(kinds: list[str], node: str, host_root: str, netns: str | None
          ) -> list[tuple[tuple[str, ...], Callable[[], list[Evidence]]]]:
    """(kinds a job produces, the job). The netlink kinds share one socket, hence one job."""
    table: dict[str, Callable[[], list[Evidence]]] = {
        "host": lambda: collect_host(node, host_root, netns),
        "iptables-save": lambda: collect_iptables(node, netns),
        "nft-ruleset": lambda: collect_nft(node, netns),
        "sysctls": lambda: collect_sysctls(node, host_root, netns),
        "sockets": lambda: collect_sockets(node, netns),
        "cni": lambda: collect_cni(node, host_root),
        "resolv": lambda: collect_resolv(node, host_root),
    }
    jobs: list[tuple[tuple[str, ...], Callable[[], list[Evidence]]]] = []
    nl = tuple(k for k in kinds if k in NETLINK_KINDS)
    if nl:
        jobs.append((nl, lambda: collect_netlink(node, netns, nl)))
    jobs += [((k,), table[k]) for k in kinds if k in table]
    return jobs


def _isolated(produces: tuple[str, ...], job: Callable[[], list[Evidence]], node: str) -> list[Evidence]:
    try:
        return list(job())
    except Exception as exc:  # a collector bug must cost only its own evidence
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}"
        return [evidence(k, node, f"collector {k}", error=f"collector raised {type(exc).__name__}: {exc} (at {where})")
                for k in produces]


def collect(host_root: str = "/", node_name: str | None = None, kinds: Iterable[str] | None = None,
            netns: str | None = None, parallel: bool = True) -> EvidenceBundle:
    """Collect the selected evidence kinds (None: all) about one node. Never raises for a node problem.

    host_root: where the node's filesystem is mounted ("/" on the node, "/host" in the probe pod).
    netns: a named network namespace (the lab): commands run via `ip netns exec`, netlink via
    pyroute2 NetNS; host_root then still locates the node's files (CNI config, resolv.conf).
    parallel: run collectors in threads; they mostly wait on subprocesses and the kernel.
    """
    node = node_name or default_node_name()
    wanted = list(ALL_KINDS) if kinds is None else list(dict.fromkeys(kinds))
    # A kind no node collector produces (a rule's plan may ask for active-test evidence) is an
    # error item, not an exception: the rules needing it skip with this reason, the rest run.
    unknown = [evidence(k, node, "probes.collect", error=f"no node collector produces evidence kind {k!r} "
                        f"(node kinds: {', '.join(ALL_KINDS)})") for k in wanted if k not in ALL_KINDS]
    wanted = [k for k in wanted if k in ALL_KINDS]
    jobs = _jobs(wanted, node, host_root, netns)
    if netns and not os.path.exists(f"/var/run/netns/{netns}") and not os.path.exists(f"/run/netns/{netns}"):
        results = [[evidence(k, node, f"netns {netns}", error=f"network namespace {netns!r} does not exist")
                    for k in wanted], unknown]
        return _bundle(results)
    # The netlink job goes first, alone: pyroute2's NetNS forks a helper to enter the
    # namespace, and forking while other threads run can deadlock the child.
    first = [j for j in jobs if j[0][0] in NETLINK_KINDS]
    rest = [j for j in jobs if j[0][0] not in NETLINK_KINDS]
    results = [unknown] + [_isolated(p, j, node) for p, j in first]
    if parallel and len(rest) > 1:
        with ThreadPoolExecutor(max_workers=min(8, len(rest))) as pool:
            results += list(pool.map(lambda j: _isolated(j[0], j[1], node), rest))
    else:
        results += [_isolated(p, j, node) for p, j in rest]
    return _bundle(results)


def _bundle(results: list[list[Evidence]]) -> EvidenceBundle:
    """Evidence in ALL_KINDS order (stable within a kind), so bundles diff cleanly between runs."""
    order = {k: i for i, k in enumerate(ALL_KINDS)}
    items = sorted((e for r in results for e in r), key=lambda e: order.get(e.kind, len(order)))
    return EvidenceBundle(evidence=items, tool={"name": "netdoctor", "version": __version__})
