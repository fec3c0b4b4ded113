"""kube-proxy itself: is it programming this node, in the mode the cluster asks for, in one backend.

Every Service path on a node (ClusterIP, NodePort, LoadBalancer) is rules kube-proxy wrote, so
when it is absent, in an unexpected mode, or split over two iptables backends, every
Service symptom on that node follows from it. These rules say so first. Reading a node's
dumps is in checks/_kubeproxy_state.py, shared with checks/nodeport.py.
"""
from __future__ import annotations

from typing import Any

from k8snetdoctor import kube_iptables as kipt
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Finding, Remediation
from k8snetdoctor.rule import EvidenceSet, Explains, Rule

from ._active import same_node
from ._kubeproxy_state import Dump, configured_mode, dumps, nft_has_kube_proxy, ref

KP_POD = "kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide --field-selector spec.nodeName={node}"
KP_LOGS = ("kubectl -n kube-system logs --tail=100 $(kubectl -n kube-system get pods -l k8s-app=kube-proxy "
            "--field-selector spec.nodeName={node} -o name)")
KP_RESTART = ("kubectl -n kube-system delete pod -l k8s-app=kube-proxy --field-selector spec.nodeName={node}"
               "   # the DaemonSet recreates it and it rewrites every rule")

MODE = Rule(
    id="kubeproxy.mode",
    title="kube-proxy programs this node in the configured mode",
    description=(
        "kube-proxy turns Services into iptables rules, IPVS virtual servers or an nftables table "
        "(`table ip kube-proxy`). A node with none of them has no kube-proxy running (crashed, "
        "unschedulable, disabled as with k3s --disable-kube-proxy): every ClusterIP and NodePort "
        "fails there. A node whose rules are of another mode than the kube-proxy ConfigMap's `mode` "
        "runs an old or overridden configuration (pod not restarted after a change, a --proxy-mode "
        "flag, or IPVS kernel modules missing so kube-proxy fell back to iptables)."
    ),
    severity="high",
    needs=("iptables-save",),
    wants=("nft-ruleset",),
    failureModes=("FM-18",),
    references=(
        "https://kubernetes.io/docs/reference/networking/virtual-ips/#proxy-modes",
        "https://github.com/kubernetes/kubernetes/issues/35641",
        "https://github.com/kubernetes/kubernetes/issues/81353",
    ),
    remediation=Remediation(
        summary="Get kube-proxy on {node} running, in the mode the cluster is configured for ({configured}).",
        commands={
            "generic": [
                KP_POD,
                KP_LOGS + "   # look for 'Using iptables Proxier' / 'Using ipvs Proxier' and errors",
                "kubectl -n kube-system get cm kube-proxy -o yaml | grep -E '^ +mode:'   # \"\" means iptables",
                KP_RESTART,
            ],
            "kubeadm": ["kubectl -n kube-system get ds kube-proxy -o wide"
                        "   # DESIRED must equal the node count; else fix tolerations/nodeSelector"],
            "k3s": ["grep -n -e disable-kube-proxy -e kube-proxy-arg /etc/rancher/k3s/config.yaml   # on {node}",
                    "systemctl restart k3s-agent   # k3s on a server node; kube-proxy is embedded in k3s"],
            "kind": ["docker exec {node} crictl ps -a --name kube-proxy"],
        },
    ),
    explains=("nodeport.rules", "nodeport.addresses", Explains("nodeport.reachable", same_node)),
)

BACKEND_SPLIT = Rule(
    id="kubeproxy.backend-split",
    title="kube-proxy rules live in one iptables backend",
    description=(
        "iptables 1.8 has two backends, legacy (xtables) and nft, and the kernel evaluates both. "
        "When host tools (kubelet, CNI, Docker) and the containerised kube-proxy use different "
        "ones, or a node was upgraded between them, KUBE-* rules exist twice: a stale set keeps "
        "DNATing to old endpoints or rejecting Services, and kube-proxy cannot repair what it "
        "does not see. Symptoms: Services randomly unreachable, 'no route to host', duplicate "
        "KUBE-FIREWALL rules, CoreDNS loops."
    ),
    severity="critical",
    needs=("iptables-save",),
    failureModes=("FM-12",),
    references=(
        "https://github.com/kubernetes/kubernetes/issues/71305",
        "https://github.com/kubernetes/kubernetes/issues/82361",
        "https://github.com/kubernetes-sigs/iptables-wrappers",
        "https://github.com/k3s-io/k3s/issues/1247",
    ),
    remediation=Remediation(
        summary=("Keep kube-proxy's rules in one backend on {node}: {active} is current, {stale} holds a "
                 "stale copy. Remove the stale copy, then restart kube-proxy and the CNI."),
        commands={
            "generic": [
                "iptables-legacy-save | grep -c '^-A KUBE-'; iptables-nft-save | grep -c '^-A KUBE-'"
                "   # on {node}: both non-zero = split",
                "update-alternatives --display iptables; iptables -V   # the host's backend",
                "iptables-{stale} -t nat -F; iptables-{stale} -t nat -X; iptables-{stale} -F; iptables-{stale} -X"
                "   # flushes ALL {stale} rules: first check nothing else (firewalld, Docker) uses that backend",
                KP_RESTART,
                "kubectl -n kube-system delete pod --field-selector spec.nodeName={node} -l app=flannel"
                "   # or your CNI's label",
            ],
            "kubeadm": [
                "update-alternatives --set iptables /usr/sbin/iptables-legacy; "
                "update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy   # only for kube-proxy images "
                "without iptables-wrappers (before 1.17); then reboot",
            ],
            "k3s": ["k3s check-config; systemctl restart k3s-agent   # after flushing the stale backend (k3s-io/k3s#1247)"],
        },
    ),
    explains=("kubeproxy.mode", "nodeport.rules", "nodeport.addresses", "nodeport.etp-local"),
)


# -- kubeproxy.mode -------------------------------------------------------------------------------
def _modes(evidence: EvidenceSet, node: str) -> tuple[set[str], list[Dump]]:
    ds = dumps(evidence, node)
    modes: set[str] = {d.mode for d in ds if d.mode}
    if nft_has_kube_proxy(evidence, node):
        modes.add("nftables")
    return modes, ds


def _summary(ds: list[Dump]) -> list[str]:
    lines = []
    for d in ds:
        last = kipt.last_service_rule(d.rules)
        lines.append(f"{d.evidence.source or d.backend}: {d.kube_rules} '-A KUBE-' rules, mode {d.mode or 'none'}")
        if last:
            lines.append(f"  last nat KUBE-SERVICES rule: {last.line}")
    return lines


@MODE.judge
def judge_mode(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    configured = configured_mode(view)
    nodes = [n for n in evidence.nodes() if evidence.all("iptables-save", n)]
    seen = {n: _modes(evidence, n) for n in nodes}
    with_rules = sorted(n for n, (modes, _) in seen.items() if modes)
    out: list[Finding] = []
    for node in nodes:
        modes, ds = seen[node]
        values: dict[str, Any] = {"node": node, "configured": configured or "unknown"}
        if not ds:
            ev = evidence.get("iptables-save", node)
            out.append(MODE.skip(f"{node}: iptables-save could not be read ({ev.error if ev else 'absent'})",
                                 nodes=[node]))
            continue
        refs = [ref(ds[0], _summary(ds))]
        nft_note = "" if nft_has_kube_proxy(evidence, node) is not None else \
            " (nftables mode not checked: no nft-ruleset evidence)"
        if not modes:
            others = [n for n in with_rules if n != node]
            if configured:
                out.append(MODE.fail(
                    f"{node}: the kube-proxy ConfigMap sets mode {configured} but {node} has no kube-proxy rules "
                    f"of any mode{nft_note}: kube-proxy is not running there or never synced",
                    nodes=[node], evidence=refs, values=values))
            elif others:
                verb = "has" if len(others) == 1 else "have"
                out.append(MODE.fail(
                    f"{node}: no kube-proxy rules while {', '.join(others)} {verb} them{nft_note}: kube-proxy is "
                    f"not running on {node}, so no Service works from or through it", nodes=[node],
                    evidence=refs, values=values))
            else:
                out.append(MODE.warn(
                    f"{node}: no kube-proxy rules on any node{nft_note}: kube-proxy is not deployed, or a "
                    "replacement (Cilium kube-proxy-free, kube-router) implements Services", nodes=[node],
                    evidence=refs, values=values, severity="low"))
        elif configured and configured not in modes:
            out.append(MODE.fail(
                f"{node}: the kube-proxy ConfigMap sets mode {configured} but {node}'s rules are "
                f"{'/'.join(sorted(modes))} mode: kube-proxy there runs another configuration (not restarted "
                "after the change, a --proxy-mode flag, or a fallback such as missing ip_vs modules)",
                nodes=[node], evidence=refs, values=values))
        elif len(modes) > 1:
            out.append(MODE.warn(
                f"{node}: rules of several modes ({', '.join(sorted(modes))}): leftovers of a previous mode "
                "that kube-proxy did not clean up", nodes=[node], evidence=refs, values=values, severity="medium"))
        else:
            mode = next(iter(modes))
            where = ", ".join(f"{d.backend} backend, {d.kube_rules} KUBE-* rules" for d in ds if d.mode)
            match = ", as the ConfigMap says" if configured else ""
            out.append(MODE.ok(f"{node}: kube-proxy runs in {mode} mode{match}" + (f" ({where})" if where else ""),
                               nodes=[node], evidence=refs))
    return out


# -- kubeproxy.backend-split ----------------------------------------------------------------------
def _current_score(d: Dump, view: ClusterView | None) -> int:
    """How many of the cluster's current Service ports have a KUBE-SVC chain in this dump."""
    if view is None:
        return d.kube_rules
    chains = set(d.rules.chain_names("nat"))
    return sum(1 for sp in view.service_ports()
               if f"KUBE-SVC-{kipt.chain_hash(sp.ref, sp.protocol)}" in chains)


@BACKEND_SPLIT.judge
def judge_backend_split(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    out: list[Finding] = []
    for node in evidence.nodes():
        if not evidence.all("iptables-save", node):
            continue
        ds = dumps(evidence, node)
        failed = [e for e in evidence.all("iptables-save", node) if not e.ok]
        if not ds:
            out.append(BACKEND_SPLIT.skip(f"{node}: no iptables backend could be read", nodes=[node]))
            continue
        holding = [d for d in ds if d.kube_rules > 0]
        counts = ", ".join(f"{d.backend}: {d.kube_rules}" for d in ds)
        if len(holding) < 2:
            unread = "".join(f"; {e.source or 'a backend'} not read: {e.error}" for e in failed)
            where = f"only the {holding[0].backend} backend holds" if holding else "no backend holds"
            out.append(BACKEND_SPLIT.ok(f"{node}: {where} KUBE-* rules ({counts}){unread}", nodes=[node],
                                        evidence=[ref(d, f"{d.evidence.source}: {d.kube_rules} '-A KUBE-' rules")
                                                  for d in ds]))
            continue
        ranked = sorted(holding, key=lambda d: (_current_score(d, view), d.kube_rules), reverse=True)
        tie = (_current_score(ranked[0], view), ranked[0].kube_rules) == \
              (_current_score(ranked[1], view), ranked[1].kube_rules)
        active, stale = ("<the backend kube-proxy uses>", "<legacy|nft>") if tie else \
            (ranked[0].backend, ranked[1].backend)
        refs = []
        for d in holding:
            lines = [f"{d.evidence.source}: {d.kube_rules} '-A KUBE-' rules ({d.rules.version or 'version unknown'})"]
            lines += d.rules.warnings[:2]
            last = kipt.last_service_rule(d.rules)
            if last:
                lines.append(last.line)
            refs.append(ref(d, lines))
        verdict = "cannot tell which one kube-proxy maintains" if tie else \
            f"{active} looks current (it has more of the cluster's Services), {stale} is a stale copy"
        out.append(BACKEND_SPLIT.fail(
            f"{node}: KUBE-* rules exist in both iptables backends ({counts}); the kernel runs both, so the "
            f"stale set keeps matching packets: {verdict}", nodes=[node], evidence=refs,
            values={"node": node, "active": active, "stale": stale}))
    return out
