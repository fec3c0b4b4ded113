"""Path MTU between node pairs, judged from Don't-Fragment pings at and above the expected MTU (FM-08).

At the MTU the path must carry the packet; a timeout there while ordinary pings to the same
address pass is the classic overlay mismatch: small packets (handshakes, pings) work, full-size
ones vanish. A local "too big" at the MTU means this node's own interface is smaller than the
cluster assumes. One byte above, a silent drop (no "fragmentation needed") is a black hole.
The ordinary pings come from `conn` evidence; where the same address fails small too, the
problem is reachability, not MTU, and is left to the crossnode rules.
"""
from __future__ import annotations

from k8snetdoctor.model import Finding, Remediation
from k8snetdoctor.rule import EvidenceSet, Rule

from ._active import entries, failed, judged, refs, vantage_node

PATH = Rule(
    id="mtu.path",
    title="Full-size packets cross between every node pair",
    description=(
        "flannel's VXLAN adds 50 bytes, so pods get an MTU 50 below the underlay's. If the real "
        "underlay is smaller (a VPN, a cloud network with 1450 or jumbo frames on one side only), "
        "packets at the pod MTU are dropped while small ones pass: TLS handshakes and large "
        "responses hang, pings work (FM-08)."
    ),
    severity="high",
    needs=("mtu",),
    wants=("conn",),
    failureModes=("FM-08",),
    references=(
        "https://github.com/flannel-io/flannel/blob/master/Documentation/troubleshooting.md",
        "https://github.com/k3s-io/k3s/issues/4357",
    ),
    remediation=Remediation(
        summary="Make the underlay MTU between {a} and {b} at least the pod MTU + 50, or lower the pod MTU to fit.",
        commands={
            "generic": [
                "ip link show | grep -E 'mtu|^[0-9]'   # on {a} and {b}: the underlay NIC and flannel.1",
                "ping -M do -s 1422 <peer-ip>   # 1450-byte packet; lower -s until it passes to find the path MTU",
                "kubectl -n kube-flannel edit cm kube-flannel-cfg   # net-conf.json: \"MTU\": <path MTU - 50>; "
                "restart flannel, then recreate pods",
            ],
            "aws": ["aws ec2 describe-instances --query 'Reservations[].Instances[].NetworkInterfaces[].Attachment'"
                    "   # jumbo (9001) inside a VPC, 1500 across a VPN/peering"],
            "k3s": ["echo 'flannel-backend: vxlan' >> /etc/rancher/k3s/config.yaml; "
                    "# set --flannel-iface to the NIC with the right MTU, then systemctl restart k3s"],
        },
    ),
)


def _small_ok(conn: dict[tuple[str, str], list[bool]], src: str, host: str) -> bool | None:
    """Whether ordinary tests from src to host passed: True, False (all failed), None (none ran)."""
    seen = conn.get((src, host))
    if not seen:
        return None
    return any(seen)


@PATH.judge
def judge_path(view, evidence: EvidenceSet) -> list[Finding]:
    conn: dict[tuple[str, str], list[bool]] = {}
    for _, e in entries(evidence, "conn"):
        if judged(e) and e.get("ok") is not None:
            conn.setdefault((str(e.get("from")), str(e.get("host"))), []).append(bool(e["ok"]))
    pairs: dict[tuple[str, str], dict[str, list]] = {}
    for ev, e in entries(evidence, "mtu", ("mtu-underlay", "mtu-pod")):
        src, dst = vantage_node(e), e.get("toNode")
        if not (src and dst and judged(e)):
            continue
        slot = pairs.setdefault(tuple(sorted((src, dst))), {"seen": [], "bad": []})  # type: ignore[arg-type]
        slot["seen"].append((ev, e))
        if not failed(e) or (e.get("expect") == "too-big" and e.get("result") != "timeout"):
            continue
        local = e.get("result") == "too-big" and e.get("local")
        small = _small_ok(conn, str(e.get("from")), str(e.get("host")))
        if local or small is not False:      # small packets pass (or were not tried): it is the size
            slot["bad"].append((ev, e))
    out = []
    for (a, b), slot in sorted(pairs.items()):
        details = {"pair": [a, b], "layer": "mtu"}
        if not slot["bad"]:
            out.append(PATH.ok(f"{a} <-> {b}: DF pings at the MTU pass, above it are refused", pairs=[[a, b]],
                               evidence=refs(slot["seen"]), details=details))
            continue
        words = "; ".join(f"{e.get('from')} -> {e.get('to')} DF {e.get('size')} (MTU {e.get('mtu')}): "
                          f"{e.get('result')}" + (f", route MTU {e['routeMtu']}" if e.get("routeMtu") else "")
                          for _, e in slot["bad"][:4])
        mtus = sorted({e.get("mtu") for _, e in slot["bad"] if e.get("mtu")})
        out.append(PATH.fail(f"{a} <-> {b}: full-size packets do not cross while small ones do ({words})",
                             pairs=[[a, b]], evidence=refs(slot["bad"]), values={"a": a, "b": b},
                             details={**details, "mtu": mtus}))
    return out
