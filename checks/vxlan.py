"""VXLAN between node pairs, judged from the encapsulated echo (active evidence `vxlan-echo`).

A plain UDP probe to 8472 cannot tell open from filtered; the echo can: the peer's kernel
decapsulates our frame and answers through its own VXLAN. Two echoes per pair (A->B and B->A)
localise the broken direction: "no-reply" from A means A->B (or its reply) is lost, while
"reply-dropped-locally" from B means B's request reached A and A's answer reached B's wire
but B's stack dropped it: packets from A to B are dropped at B. The overlay carries every
pod packet between the two nodes, so this finding explains their pod-to-pod, node-to-pod,
NodePort (endpoint across the pair) and DNS (CoreDNS across the pair) symptoms.
"""
from __future__ import annotations

from k8snetdoctor.model import Finding, Remediation
from k8snetdoctor.rule import EvidenceSet, Explains, Rule

from ._active import VXLAN_OPEN, entries, failed, judged, refs, vantage_node


def _pair_explains_crossnode(cause: Finding, symptom: Finding) -> bool:
    d = symptom.details
    return d.get("from") != d.get("to") and {d.get("from"), d.get("to")} == set(cause.details.get("pair") or ())


def _pair_explains_nodeport(cause: Finding, symptom: Finding) -> bool:
    """The NodePort on one node of the pair fails when an endpoint sits on the other."""
    pair = set(cause.details.get("pair") or ())
    node = symptom.details.get("node")
    return node in pair and bool((pair - {node}) & set(symptom.details.get("endpointNodes") or ()))


def _pair_explains_dns(cause: Finding, symptom: Finding) -> bool:
    """DNS from one node of the pair fails when the CoreDNS pods it cannot reach sit on the other."""
    pair = set(cause.details.get("pair") or ())
    node = symptom.details.get("node")
    return node in pair and bool((pair - {node}) & set(symptom.details.get("corednsNodes") or ()))


UDP_BLOCKED = Rule(
    id="vxlan.udp-blocked",
    title="VXLAN (UDP 8472) passes between every node pair",
    description=(
        "flannel's VXLAN backend carries all pod traffic between nodes inside UDP 8472. A cloud "
        "security group (FM-01) or a host firewall (FM-02) that drops it between two nodes breaks "
        "only the pods of that pair: everything else works, which makes it look random. The "
        "encapsulated echo proves the peer's VTEP answers and shows which direction is dropped."
    ),
    severity="critical",
    needs=("vxlan-echo",),
    failureModes=("FM-01", "FM-02"),
    references=(
        "https://github.com/flannel-io/flannel/blob/master/Documentation/troubleshooting.md#firewalls",
        "https://docs.k3s.io/installation/requirements#inbound-rules-for-k3s-nodes",
    ),
    remediation=Remediation(
        summary="Allow UDP 8472 between {a} and {b}, in both directions (security group and host firewall).",
        commands=VXLAN_OPEN,
    ),
    explains=(
        Explains("crossnode.pod-pod", _pair_explains_crossnode),
        Explains("crossnode.node-pod", _pair_explains_crossnode),
        Explains("crossnode.pod-node", _pair_explains_crossnode),
        Explains("nodeport.reachable", _pair_explains_nodeport),
        Explains("dns.unreachable-from", _pair_explains_dns),
    ),
)


def broken_direction(src: str, dst: str, result: str) -> tuple[str, str] | None:
    """(from, to) of the direction an echo from src to dst shows broken, else None."""
    if result == "no-reply":
        return src, dst
    if result == "reply-dropped-locally":      # dst answered; src's stack never got it
        return dst, src
    return None


@UDP_BLOCKED.judge
def judge_udp_blocked(view, evidence: EvidenceSet) -> list[Finding]:
    pairs: dict[tuple[str, str], list] = {}
    for ev, e in entries(evidence, "vxlan-echo", ("vxlan",)):
        src, dst = vantage_node(e), e.get("toNode")
        if src and dst and judged(e):
            pairs.setdefault(tuple(sorted((src, dst))), []).append((ev, e))  # type: ignore[arg-type]
    out = []
    for (a, b), seen in sorted(pairs.items()):
        bad = [(ev, e) for ev, e in seen if failed(e)]
        if not bad:
            out.append(UDP_BLOCKED.ok(f"{a} <-> {b}: encapsulated echo answered both ways", pairs=[[a, b]],
                                      evidence=refs(seen), details={"pair": [a, b], "layer": "overlay"}))
            continue
        dirs = sorted({d for _, e in bad if (d := broken_direction(vantage_node(e) or "", e["toNode"], e["result"]))})
        if len(dirs) == 1:
            src, dst = dirs[0]
            how = f"VXLAN from {src} to {dst} is dropped (the other direction works)"
            direction = f"{src}->{dst}"
        else:
            src, dst = a, b
            how = f"VXLAN between {a} and {b} is dropped in both directions"
            direction = "both"
        words = "; ".join(f"{vantage_node(e)}->{e['toNode']}: {e['result']}" for _, e in bad)
        peer_ip = next((e.get("host") for _, e in bad if vantage_node(e) == src), "") or "<peer-ip>"
        out.append(UDP_BLOCKED.fail(
            f"{how}: pods on {a} and {b} cannot talk ({words})", pairs=[[src, dst]], evidence=refs(seen),
            values={"a": src, "b": dst, "peer_ip": peer_ip},
            details={"from": src, "to": dst, "direction": direction, "pair": [a, b], "layer": "overlay"}))
    return out
