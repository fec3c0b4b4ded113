"""Shared, pure helpers for the rules that judge active-test evidence (probes/active/collate.py).

Active evidence is one item per vantage and kind; each item's `data["results"]` lists entries
with the test's expectation next to its result. Rules ask the same questions of them (which
entries of a category failed, from which node to which node), so the answers live here once,
along with the remediation lines several rules share.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from k8snetdoctor.model import Evidence, EvidenceRef, Finding
from k8snetdoctor.rule import EvidenceSet, Explains

Entry = Mapping[str, Any]
# Results that say the test could not be judged (no packet went out, or the deadline came).
UNJUDGED = frozenset({"skipped", "error"})

VXLAN_OPEN = {
    "generic": [
        "iptables -I INPUT -p udp --dport 8472 -s {peer_ip} -j ACCEPT   # on {a} and {b}, each naming the other",
        "iptables -S | grep -n 8472; nft list ruleset | grep -n 8472   # find the rule that drops it",
    ],
    "ufw": ["ufw allow from {peer_ip} to any port 8472 proto udp   # on {a} and {b}, each naming the other"],
    "firewalld": [
        "firewall-cmd --permanent --add-port=8472/udp && firewall-cmd --reload   # on {a} and {b}",
        "firewall-cmd --permanent --zone=trusted --add-interface=flannel.1 && firewall-cmd --reload",
    ],
    "aws": ["aws ec2 authorize-security-group-ingress --group-id <sg-of-nodes> --protocol udp --port 8472 "
            "--source-group <sg-of-nodes>   # all nodes, both directions"],
    "k3s": [
        "iptables -I INPUT -p udp --dport 8472 -s {peer_ip} -j ACCEPT   # on {a} and {b}; k3s flannel uses 8472 too",
        "systemctl restart k3s-agent   # (k3s on servers) once the port is open, to re-sync flannel",
    ],
}


def items(evidence: EvidenceSet, kind: str) -> list[Evidence]:
    """Usable active evidence of `kind`, in a stable order (node, then vantage)."""
    return sorted((e for e in evidence.all(kind) if e.ok and isinstance(e.data, dict)),
                  key=lambda e: (e.node or "~", e.vantage, e.id))


def entries(evidence: EvidenceSet, kind: str,
            categories: Iterable[str] | None = None) -> Iterator[tuple[Evidence, Entry]]:
    """(evidence item, entry) for each entry of `kind`, limited to `categories` when given."""
    cats = set(categories) if categories is not None else None
    for ev in items(evidence, kind):
        for e in ev.data.get("results") or []:
            if cats is None or e.get("category") in cats:
                yield ev, e


def vantage_node(e: Entry) -> str | None:
    """The node a test ran on ("node/X" and "pod/X" -> X); None for the external vantage."""
    src = str(e.get("from") or "")
    return src.split("/", 1)[1] if "/" in src else None


def vantage_kind(e: Entry) -> str:
    return str(e.get("from") or "").split("/", 1)[0]


def judged(e: Entry) -> bool:
    return e.get("result") not in UNJUDGED


def failed(e: Entry) -> bool:
    """The test ran and its result is not what a healthy cluster shows."""
    return judged(e) and e.get("ok") is False


def line(e: Entry) -> str:
    """One entry in words, for evidence excerpts (the shape of collate.line, without importing probes)."""
    mark = {True: "ok  ", False: "FAIL", None: "--  "}.get(e.get("ok"), "?   ")
    if e.get("method") == "dns":
        what = f"{e.get('qname')} @{e.get('server') or e.get('host')}"
    else:
        what = f"{e.get('to')} {e.get('host')}" + (f":{e['port']}" if e.get("port") else "")
        if e.get("method") == "df-ping":
            what += f" DF size {e.get('size')}"
    detail = f": {e['detail']}" if e.get("detail") else ""
    want = f" (expected {e.get('expect')})" if e.get("ok") is False else ""
    return f"{mark} {e.get('from')} {e.get('category')} {e.get('method')} {what} -> {e.get('result')}{want}{detail}"


def refs(pairs: Iterable[tuple[Evidence, Entry]], limit: int = 12) -> list[EvidenceRef]:
    """One reference per evidence item, quoting its entries (at most `limit` lines each)."""
    by_ev: dict[str, tuple[Evidence, list[str]]] = {}
    for ev, e in pairs:
        by_ev.setdefault(ev.id, (ev, []))[1].append(line(e))
    out = []
    for ev, lines in by_ev.values():
        more = f"\n… and {len(lines) - limit} more" if len(lines) > limit else ""
        out.append(EvidenceRef.to(ev, "\n".join(lines[:limit]) + more))
    return out


def pair_nodes(f: Finding) -> set[str]:
    return {n for p in f.scope.nodePairs for n in p}


def finding_nodes(f: Finding) -> set[str]:
    return set(f.scope.nodes) | pair_nodes(f)


def joined(names: Iterable[str]) -> str:
    return ", ".join(sorted(set(names)))


# -- correlation tests shared by the causes that break a whole node's (or pair's) data plane ----------
def explains_nodeport(cause: Finding, symptom: Finding) -> bool:
    """A node-scoped cause explains a NodePort failing on its node, or whose endpoints run on it."""
    d = symptom.details
    return bool(finding_nodes(cause) & ({d.get("node")} | set(d.get("endpointNodes") or ())))


def explains_dns(cause: Finding, symptom: Finding) -> bool:
    """A node-scoped cause explains DNS failing from its node, or to the CoreDNS pods on it."""
    d = symptom.details
    return bool(finding_nodes(cause) & ({d.get("node")} | set(d.get("corednsNodes") or ())))


def same_pair(cause: Finding, symptom: Finding) -> bool:
    """A pair-scoped cause explains a pair-scoped symptom between the same two nodes (either way round)."""
    return bool(pair_nodes(symptom)) and pair_nodes(cause) == pair_nodes(symptom)


def same_node(cause: Finding, symptom: Finding) -> bool:
    return symptom.details.get("node") in finding_nodes(cause)


CROSSNODE = ("crossnode.pod-pod", "crossnode.node-pod", "crossnode.pod-node")
# What a node whose pod traffic cannot leave or enter it (forwarding off, no podCIDR, no or an
# unreachable VTEP) explains: its pod paths, NodePorts served through it, DNS from or to it.
NODE_DATAPLANE: tuple[str | Explains, ...] = (*CROSSNODE, Explains("nodeport.reachable", explains_nodeport),
                                              Explains("dns.unreachable-from", explains_dns))
