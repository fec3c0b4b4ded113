"""Cluster DNS as pods and nodes see it, from active queries (evidence kind `dns`).

The planner asks the same names several ways, and the pattern tells the faults apart:
- cluster names failing from one node's vantages, direct queries to CoreDNS pods included,
  while other nodes resolve them: that node cannot reach CoreDNS (FM-32) — the overlay
  between it and the CoreDNS nodes, usually, which is then the root cause;
- cluster names answering but external names failing everywhere: CoreDNS's upstream (FM-33);
- CoreDNS forwarding to a loopback stub or to the cluster DNS itself: a loop (FM-29), which
  also makes external names fail (REFUSED once the loop is detected).
"""
from __future__ import annotations

from typing import Any

from k8snetdoctor.model import Finding, Remediation
from k8snetdoctor.rule import EvidenceSet, Rule

from ._active import Entry, entries, failed, joined, judged, refs, vantage_kind, vantage_node

THROUGH_COREDNS = ("dns-cluster-ip", "dns-coredns-endpoint", "dns-resolv")
TRANSPORT = frozenset({"timeout", "unreachable"})
LOOPING = frozenset({"loopback", "cluster-dns", "coredns-endpoint"})

UNREACHABLE_FROM = Rule(
    id="dns.unreachable-from",
    title="Every node's pods reach CoreDNS",
    description=(
        "Pods resolve through the kube-dns ClusterIP, i.e. through CoreDNS pods that usually run on "
        "one or two nodes. When the overlay from a node to those nodes is broken, DNS fails for that "
        "node's pods only, and it is the first thing users notice (FM-32). Direct queries to each "
        "CoreDNS pod show which CoreDNS nodes are out of reach."
    ),
    severity="high",
    needs=("dns",),
    failureModes=("FM-32",),
    references=("https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/",),
    remediation=Remediation(
        summary="Repair pod traffic from {node} to the CoreDNS nodes ({coredns}); spreading CoreDNS only masks it.",
        commands={
            "generic": [
                "netdoctor check vxlan crossnode   # the path from {node} to {coredns}",
                "kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide",
                "kubectl -n kube-system scale deploy coredns --replicas=2   # masking only, with anti-affinity",
            ],
            "k3s": ["kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide; journalctl -u k3s-agent | "
                    "grep -i flannel | tail   # on {node}"],
        },
    ),
)

UPSTREAM = Rule(
    id="dns.upstream",
    title="CoreDNS resolves external names through its upstream",
    description=(
        "CoreDNS answers cluster names itself and forwards the rest (Corefile `forward .`). When the "
        "upstream is unreachable from the CoreDNS pods — egress NAT missing, UDP/TCP 53 blocked, a "
        "resolver that is down — cluster names keep working and every external name times out or "
        "SERVFAILs, cluster-wide (FM-33)."
    ),
    severity="high",
    needs=("dns",),
    failureModes=("FM-33",),
    references=("https://coredns.io/plugins/forward/",
                "https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/"),
    remediation=Remediation(
        summary="Let the CoreDNS pods on {coredns} reach their upstream resolvers on UDP/TCP 53, or forward elsewhere.",
        commands={
            "generic": [
                "kubectl -n kube-system get cm coredns -o jsonpath='{{.data.Corefile}}' | grep -n forward",
                "kubectl -n kube-system logs -l k8s-app=kube-dns | grep -i 'i/o timeout' | tail",
                "iptables -t nat -S POSTROUTING | grep -i masq   # on {coredns}: pod egress must be masqueraded",
                "kubectl -n kube-system edit cm coredns   # forward . <reachable resolvers>",
            ],
            "aws": ["aws ec2 describe-network-acls   # outbound UDP/TCP 53 to the VPC resolver (.2) must pass"],
            "k3s": ["kubectl -n kube-system edit cm coredns   # or k3s --resolv-conf pointing at real resolvers"],
        },
    ),
    explains=(),
)

LOOP = Rule(
    id="dns.loop",
    title="CoreDNS does not forward to itself",
    description=(
        "CoreDNS with `forward . /etc/resolv.conf` (dnsPolicy Default) inherits its node's resolv.conf. "
        "On a node running systemd-resolved that file names the stub 127.0.0.53, which inside the "
        "CoreDNS pod is CoreDNS itself: the loop plugin detects it and CoreDNS stops (FM-29) or "
        "external names are refused. The cluster DNS IP in a node's resolv.conf loops the same way."
    ),
    severity="critical",
    needs=("dns",),
    failureModes=("FM-29",),
    references=("https://coredns.io/plugins/loop/#troubleshooting",),
    remediation=Remediation(
        summary="Point CoreDNS on {node} at real resolvers instead of {server}.",
        commands={
            "generic": [
                "echo 'resolvConf: /run/systemd/resolve/resolv.conf' >> /var/lib/kubelet/config.yaml   # on {node}",
                "systemctl restart kubelet   # on {node}",
                "kubectl -n kube-system rollout restart deploy/coredns",
                "# or: kubectl -n kube-system edit cm coredns -> forward . 1.1.1.1 9.9.9.9",
            ],
            "k3s": ["echo 'resolv-conf: /run/systemd/resolve/resolv.conf' >> /etc/rancher/k3s/config.yaml; "
                    "systemctl restart k3s   # on {node}"],
        },
    ),
    explains=("dns.upstream",),
)


def cluster_name(e: Entry) -> bool:
    """The planner's cluster names: `<svc>.<ns>.svc.<domain>.` and the short `kubernetes.default`."""
    q = str(e.get("qname") or "")
    return ".svc." in q or q.rstrip(".") == "kubernetes.default"


def _by_node(evidence: EvidenceSet) -> dict[str, list]:
    groups: dict[str, list] = {}
    for ev, e in entries(evidence, "dns", THROUGH_COREDNS):
        node = vantage_node(e)
        if node and judged(e) and cluster_name(e):
            groups.setdefault(node, []).append((ev, e))
    return groups


@UNREACHABLE_FROM.judge
def judge_unreachable_from(view, evidence: EvidenceSet) -> list[Finding]:
    out = []
    for node, seen in sorted(_by_node(evidence).items()):
        bad = [(ev, e) for ev, e in seen if failed(e) and e.get("result") in TRANSPORT]
        if not bad:
            out.append(UNREACHABLE_FROM.ok(f"{node}: {len(seen)} cluster-name queries answered", nodes=[node],
                                           evidence=refs(seen), details={"node": node}))
            continue
        far = sorted({e["toNode"] for _, e in bad if e.get("category") == "dns-coredns-endpoint" and e.get("toNode")})
        words = "; ".join(f"{e.get('from')} {e.get('qname')} @{e.get('server') or e.get('host')}: {e.get('result')}"
                          for _, e in bad[:4])
        where = f"the CoreDNS pods on {joined(far)} do not answer" if far else "the DNS ClusterIP does not answer"
        out.append(UNREACHABLE_FROM.fail(
            f"{node}: {len(bad)} cluster-name queries from {node} failed ({where}): {words}", nodes=[node],
            evidence=refs(bad), values={"node": node, "coredns": joined(far) or "the CoreDNS nodes"},
            details={"node": node, "corednsNodes": far, "layer": "dns"}))
    return out


def _coredns_nodes(evidence: EvidenceSet) -> list[str]:
    return sorted({e["toNode"] for _, e in entries(evidence, "dns", ("dns-coredns-endpoint",)) if e.get("toNode")})


@UPSTREAM.judge
def judge_upstream(view, evidence: EvidenceSet) -> list[Finding]:
    per_vantage: dict[str, dict[str, list]] = {}
    for ev, e in entries(evidence, "dns", THROUGH_COREDNS):
        if vantage_kind(e) == "pod" and judged(e):
            slot = per_vantage.setdefault(str(e.get("from")), {"cluster": [], "external": []})
            slot["cluster" if cluster_name(e) else "external"].append((ev, e))
    external = [x for s in per_vantage.values() for x in s["external"]]
    if not external:
        return []
    coredns = _coredns_nodes(evidence)
    answered = [x for x in external if not failed(x[1])]
    clean = [v for v, s in per_vantage.items() if s["cluster"] and not any(failed(e) for _, e in s["cluster"])]
    broken = [x for v in clean for x in per_vantage[v]["external"] if failed(x[1])]
    if answered or not broken:
        return [UPSTREAM.ok(f"external names resolve through CoreDNS ({len(answered)} answered)", nodes=coredns,
                            evidence=refs(answered or external), details={"corednsNodes": coredns})]
    results = sorted({str(e.get("rcode") or e.get("result")) for _, e in broken})
    return [UPSTREAM.fail(
        f"cluster names resolve but external names fail from every pod ({', '.join(results)}): CoreDNS on "
        f"{joined(coredns) or '?'} cannot get answers from its upstream", nodes=coredns, evidence=refs(broken),
        values={"coredns": joined(coredns) or "the CoreDNS nodes"},
        details={"corednsNodes": coredns, "layer": "dns-upstream", "results": results})]


def _loop_server(e: Entry) -> tuple[str, str] | None:
    """(server, class) when a CoreDNS upstream query went to a loopback stub or to the cluster DNS."""
    final = {"server": e.get("server"), "serverClass": e.get("serverClass")}
    tried: list[dict[str, Any]] = [*(e.get("tried") or []), final]
    return next(((t["server"], t["serverClass"]) for t in tried if t.get("serverClass") in LOOPING), None)


@LOOP.judge
def judge_loop(view, evidence: EvidenceSet) -> list[Finding]:
    out = []
    refused = [(ev, e) for ev, e in entries(evidence, "dns", THROUGH_COREDNS)
               if not cluster_name(e) and e.get("result") == "refused"]
    groups: dict[str, list] = {}
    for ev, e in entries(evidence, "dns", ("dns-coredns-upstream",)):
        if vantage_node(e) and judged(e):
            groups.setdefault(vantage_node(e), []).append((ev, e))  # type: ignore[arg-type]
    for node, seen in sorted(groups.items()):
        loops = [(ev, e, hit) for ev, e in seen if (hit := _loop_server(e))]
        if not loops:
            out.append(LOOP.ok(f"{node}: CoreDNS's upstream here is not itself "
                               f"({', '.join(sorted({str(e.get('server')) for _, e in seen}))})",
                               nodes=[node], evidence=refs(seen), details={"node": node}))
            continue
        server, cls = loops[0][2]
        also = f"; external names are refused ({len(refused)} queries)" if refused else ""
        out.append(LOOP.fail(
            f"{node}: CoreDNS forwards to {server} ({cls}), which is CoreDNS itself: a forwarding loop{also}",
            nodes=[node], evidence=refs([(ev, e) for ev, e, _ in loops] + refused[:3]),
            values={"node": node, "server": server}, details={"node": node, "server": server, "class": cls,
                                                              "layer": "dns"}))
    return out
