"""NodePorts: does every node route each NodePort to the Service's current endpoints?

A NodePort is not a socket but a chain of NAT rules kube-proxy keeps on every node
(KUBE-NODEPORTS -> KUBE-EXT -> KUBE-SVC/KUBE-SVL -> KUBE-SEP DNAT). These rules compare that
chain with the API's Services and EndpointSlices node by node, so "works on one node, not on
another" turns into the node, the Service and the missing or stale rule line.
"""
from __future__ import annotations

import ipaddress

from k8snetdoctor import kube_iptables as kipt
from k8snetdoctor.cluster.view import ClusterView, ServicePort
from k8snetdoctor.model import EvidenceRef, Finding, Remediation
from k8snetdoctor.rule import CLUSTER, EvidenceSet, Explains, Rule

from ._active import same_node
from ._kubeproxy_state import Dump, PortObs, active_dump, dumps, observe, orphans, port_label, ref
from .kubeproxy import KP_LOGS, KP_POD, KP_RESTART

NODEPORT_TYPES = ("NodePort", "LoadBalancer")

RULES = Rule(
    id="nodeport.rules",
    title="Every node routes each NodePort to the Service's ready endpoints",
    description=(
        "kube-proxy writes each NodePort on every node. A node that lacks a NodePort another node "
        "has, or whose KUBE-SEP DNAT targets differ from the Service's ready endpoints, has a "
        "kube-proxy that stopped syncing: kube-proxy does not flush its rules on exit, so older "
        "Services keep working there and only changes made since reveal it (FM-18). A Service "
        "with no ready endpoints is REJECTed by design; that is not a kube-proxy fault."
    ),
    severity="high",
    needs=(CLUSTER, "iptables-save"),
    failureModes=("FM-18", "FM-13"),
    references=(
        "https://kubernetes.io/docs/reference/networking/virtual-ips/#iptables",
        "https://github.com/kubernetes/kubernetes/issues/35641",
        "https://github.com/kubernetes/kubernetes/issues/110659",
    ),
    remediation=Remediation(
        summary="Restart kube-proxy on {node} and find out why it stopped syncing (crash, lock, scheduling).",
        commands={
            "generic": [
                KP_POD,
                KP_LOGS,
                "curl -s http://{node_ip}:10256/healthz   # kube-proxy health: lastUpdated must be recent",
                "ps -ef | grep '[i]ptables'; ls -l /run/xtables.lock   # on {node}: a hung iptables holds the lock",
                KP_RESTART,
            ],
            "kubeadm": ["kubectl -n kube-system get ds kube-proxy -o wide   # DESIRED must equal the node count"],
            "k3s": ["systemctl restart k3s-agent   # on {node} (k3s on a server node); kube-proxy is embedded"],
            "kind": ["docker exec {node} crictl ps -a --name kube-proxy"],
        },
    ),
    # NodePorts refused on exactly the node whose rules are missing
    explains=(Explains("nodeport.reachable", same_node),),
)

ADDRESSES = Rule(
    id="nodeport.addresses",
    title="NodePorts are accepted on the node's addresses",
    description=(
        "By default kube-proxy accepts NodePorts on every local address (`-m addrtype --dst-type "
        "LOCAL -j KUBE-NODEPORTS`). With nodePortAddresses (or --nodeport-addresses) it writes "
        "one `-d <ip>/32 -j KUBE-NODEPORTS` rule per node address inside those CIDRs instead, and "
        "every other address gets no DNAT: the NodePort works on one IP and not on another."
    ),
    severity="high",
    needs=("iptables-save",),
    failureModes=("FM-20",),
    references=(
        "https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/",
        "https://github.com/kubernetes/kubernetes/pull/58052",
    ),
    remediation=Remediation(
        summary="Let kube-proxy accept NodePorts on {node_ip}: widen or unset nodePortAddresses.",
        commands={
            "generic": [
                "kubectl -n kube-system get cm kube-proxy -o yaml | grep -A3 nodePortAddresses",
                "kubectl -n kube-system edit cm kube-proxy   # nodePortAddresses: null (every local IP) or CIDRs covering {node_ip}",
                "kubectl -n kube-system rollout restart ds kube-proxy",
                "kubectl -n kube-system get ds kube-proxy -o yaml | grep -n nodeport-addresses   # a flag overrides the ConfigMap",
            ],
            "k3s": ["grep -n nodeport-addresses /etc/rancher/k3s/config.yaml   # kube-proxy-arg; then systemctl restart k3s-agent"],
        },
    ),
)

LISTENER = Rule(
    id="nodeport.listener",
    title="No host process listens on a NodePort",
    description=(
        "Since Kubernetes 1.24 NodePorts are only DNAT rules: `ss -ltn` shows nothing on them, and "
        "that is normal (kube-proxy's port opener, which held them, was removed). The other side: "
        "nothing stops a host process from binding a NodePort number now, and it never sees the "
        "traffic kube-proxy DNATs away in PREROUTING, while its own clients get the Service instead."
    ),
    severity="medium",
    needs=("sockets",),
    failureModes=("FM-19",),
    references=("https://github.com/kubernetes/kubernetes/pull/108496",
                "https://github.com/kubernetes/kubernetes/issues/115568"),
    remediation=Remediation(
        summary="Move the host process on {node} off the NodePort range, or give the Service another nodePort.",
        commands={
            "generic": [
                "ss -ltnup 'sport = :{port}'   # on {node}: which process holds it",
                "sysctl -w net.ipv4.ip_local_reserved_ports=30000-32767   # keep ephemeral ports out of the range; "
                "persist in /etc/sysctl.d",
                "kubectl -n {namespace} edit svc {name}   # or pick another spec.ports[].nodePort",
            ],
        },
    ),
)

ETP_LOCAL = Rule(
    id="nodeport.etp-local",
    title="externalTrafficPolicy=Local NodePorts have a local endpoint",
    description=(
        "A Service with externalTrafficPolicy: Local delivers external traffic only to endpoints on "
        "the node it arrived at, to keep the client IP. On a node without one, kube-proxy drops it "
        "(filter KUBE-EXTERNAL-SERVICES '... has no local endpoints' -j DROP): by design, not a "
        "fault, but a NodePort that hangs on some nodes. Load balancers are meant to health-check "
        "healthCheckNodePort (LoadBalancer Services only) and skip such nodes."
    ),
    severity="low",
    needs=(CLUSTER, "iptables-save"),
    failureModes=("FM-14",),
    references=("https://kubernetes.io/docs/tasks/access-application-cluster/create-external-load-balancer/"
                "#preserving-the-client-source-ip", "https://github.com/kubernetes/kubernetes/issues/125167"),
    remediation=Remediation(
        summary="Expect {node}:{ports} to drop external traffic, or change where the endpoints run.",
        commands={
            "generic": [
                "kubectl -n {namespace} patch svc {name} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Cluster\"}}}}'"
                "   # if the client IP need not be kept",
                "# or run an endpoint on every node (a DaemonSet, or topologySpreadConstraints)",
                "kubectl -n {namespace} get svc {name} -o yaml | grep healthCheckNodePort"
                "   # LoadBalancer: point the LB health check there",
            ],
        },
    ),
)


# -- nodeport.rules -------------------------------------------------------------------------------
@RULES.judge
def judge_rules(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    assert view is not None
    ports = [sp for sp in view.service_ports(NODEPORT_TYPES) if sp.node_port]
    nodes = [n for n in evidence.nodes() if evidence.all("iptables-save", n)]
    active = {n: active_dump(evidence, n) for n in nodes}
    base = {n: active[n] or next(iter(dumps(evidence, n)), None) for n in nodes}
    if not ports or not any(active.values()):
        return [] if not ports else [RULES.skip("no node has kube-proxy iptables-mode rules (see kubeproxy.mode)")]
    eps = {sp: view.endpoints(sp) for sp in ports}  # once: endpoints() scans every EndpointSlice
    obs: dict[str, list[PortObs]] = {}
    for n in nodes:
        d = active[n]
        if d is not None:
            entries = {(e.protocol, e.port): e for e in kipt.nodeport_entries(d.rules)}
            rejects = {((b.protocol or "tcp"), b.port): b for b in kipt.blocked_services(d.rules)
                       if b.rule.chain == "KUBE-EXTERNAL-SERVICES" and b.reason == "no endpoints" and b.port}
            obs[n] = [observe(d, sp, eps[sp], entries, rejects) for sp in ports]
        elif base[n] is not None and not any(x.mode for x in dumps(evidence, n)):
            # readable, but kube-proxy wrote nothing here: every NodePort is missing
            obs[n] = [PortObs(sp, "missing" if any(e.ready for e in eps[sp]) else "no-endpoints")
                      for sp in ports]
    out: list[Finding] = []
    for n in nodes:
        if n not in obs:
            out.append(RULES.skip(f"{n}: kube-proxy does not run in iptables mode here, or iptables-save "
                                  "could not be read (see kubeproxy.mode)", nodes=[n]))
            continue
        out.append(_node_finding(n, obs, active, base[n], view, ports))
    return out


def _node_finding(node: str, obs: dict[str, list[PortObs]], active: dict[str, Dump | None], d: Dump | None,
                  view: ClusterView, ports: list[ServicePort]) -> Finding:
    """One finding per node: the Services whose NodePort rules are missing or stale there."""
    mine = obs[node]
    problems: list[PortObs] = []
    refs: list[EvidenceRef] = []
    for i, o in enumerate(mine):
        if o.state == "stale":
            problems.append(o)
            if d:
                refs.append(ref(d, o.lines))
            continue
        if o.has_rule or o.state not in ("missing", "no-endpoints"):
            continue
        peers = [p for p in obs if p != node and obs[p][i].has_rule]  # only for the few rules missing here
        if o.state == "no-endpoints" and not peers:
            continue  # no endpoints and no REJECT anywhere: nothing kube-proxy should have written
        problems.append(o)
        label = f"{o.sp.ref} ({port_label(o.sp)})"
        if not peers:
            o.detail = f"{label} has no rules on any node"
            if d:
                refs.append(ref(d, f"no KUBE-NODEPORTS rule for --dport {o.sp.node_port} on {node} "
                                   "(nor on any other node)"))
            continue
        p, line = peers[0], (obs[peers[0]][i].lines or [""])[0]
        who = ", ".join(peers[:3]) + (f" and {len(peers) - 3} more" if len(peers) > 3 else "")
        o.detail = f"{label} has no rules on {node} while {who} {'has' if len(peers) == 1 else 'have'} them"
        if d:
            refs.append(ref(d, f"no KUBE-NODEPORTS rule for --dport {o.sp.node_port} on {node}; {p} has: {line}"))
        if (peer := active[p]) is not None:
            refs.append(ref(peer, line))
    leftover = orphans(d, ports) if d and d is active[node] else []
    services = sorted({f"{o.sp.namespace}/{o.sp.name}" for o in problems})
    values = {"node": node, "node_ip": view.internal_ip(node) or "<node-ip>", "services": ", ".join(services)}
    if problems or leftover:
        details = [o.detail for o in problems]
        if leftover:
            details.append(f"{len(leftover)} NodePort rule(s) remain for ports no Service uses")
            if d:
                refs.append(ref(d, leftover))
        return RULES.fail(f"{node}: kube-proxy on {node} is not running or not syncing (rules stale): "
                          + "; ".join(details), nodes=[node], services=services, evidence=refs, values=values)
    empty = [o for o in mine if o.state == "no-endpoints"]
    ok = [o for o in mine if o.state == "ok"]
    lines = [o.lines[0] for o in ok if o.lines] + [ln for o in empty for ln in o.lines]
    msg = f"{node}: all {len(ok)} NodePort(s) route to their ready endpoints ({', '.join(o.sp.ref for o in ok)})"
    if empty:
        names = ", ".join(f"{o.sp.ref} ({port_label(o.sp)})" for o in empty)
        msg += (f"; {names} {'has' if len(empty) == 1 else 'have'} no ready endpoints, so kube-proxy refuses "
                "connections by design: not a kube-proxy fault (check the selector: kubectl get endpointslices "
                "-l kubernetes.io/service-name=<name>)")
    return RULES.ok(msg, nodes=[node], evidence=[ref(d, lines)] if d else [])


# -- nodeport.addresses ---------------------------------------------------------------------------
def _covered(ip: str, cidrs: list[str]) -> bool:
    for c in cidrs:
        if c == "primary":
            return True
        try:
            if ipaddress.ip_address(ip) in ipaddress.ip_network(c, strict=False):
                return True
        except ValueError:
            continue
    return False


@ADDRESSES.judge
def judge_addresses(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    cfg = (view.kube_proxy_config() if view else None) or {}
    cm = [str(c) for c in (cfg.get("nodePortAddresses") or [])]
    out: list[Finding] = []
    for node in evidence.nodes():
        d = active_dump(evidence, node)
        if d is None:
            if evidence.all("iptables-save", node):
                out.append(ADDRESSES.skip(f"{node}: no kube-proxy iptables-mode rules (see kubeproxy.mode)",
                                          nodes=[node]))
            continue
        scope = kipt.nodeport_scope(d.rules)
        assert scope is not None  # active dumps have nat KUBE-SERVICES
        node_ip = view.internal_ip(node) if view else None
        ports = sorted({e.port for e in kipt.nodeport_entries(d.rules)})
        plist = ", ".join(map(str, ports)) or "none yet"
        lines = [r.line for r in scope.rules] or ["(nat KUBE-SERVICES has no -j KUBE-NODEPORTS rule)"]
        values = {"node": node, "node_ip": node_ip or "<node-ip>"}
        refs = [ref(d, lines)]
        if scope.all_local:
            if cm and not _covered("0.0.0.0", cm) and "primary" not in cm:
                later = f"; once it restarts, InternalIP {node_ip} stops accepting NodePorts" \
                    if node_ip and not _covered(node_ip, cm) else ""
                out.append(ADDRESSES.warn(
                    f"{node}: the kube-proxy ConfigMap restricts nodePortAddresses to {', '.join(cm)}, but kube-proxy "
                    f"on {node} still accepts NodePorts on every local address: it runs an older config or a flag "
                    f"overrides it{later}", nodes=[node], evidence=refs, values=values,
                    severity="medium" if later else "low"))
            else:
                out.append(ADDRESSES.ok(f"{node}: NodePorts are accepted on every local address "
                                        "(addrtype LOCAL)", nodes=[node], evidence=refs))
            continue
        accepted = ", ".join(scope.addresses) or "no address"
        if not scope.addresses or (node_ip and node_ip not in scope.addresses):
            why = f"InternalIP {node_ip} is not covered, so {node_ip}:<nodePort> gets no DNAT" if node_ip else \
                "no address accepts them"
            out.append(ADDRESSES.fail(
                f"{node}: NodePorts ({plist}) are DNATed only for destination {accepted}; {why} "
                "(nodePortAddresses / --nodeport-addresses)", nodes=[node], evidence=refs, values=values))
        else:
            out.append(ADDRESSES.warn(
                f"{node}: NodePorts ({plist}) are accepted only on {accepted}; every other address of {node} "
                "(public IP, other NICs, 127.0.0.1) gets no DNAT", nodes=[node], evidence=refs, values=values,
                severity="medium"))
    return out


# -- nodeport.listener ----------------------------------------------------------------------------
def _nodeports(view: ClusterView | None, evidence: EvidenceSet, node: str) -> dict[tuple[str, int], ServicePort | None]:
    """(protocol, port) -> Service port: from the API, else from the node's KUBE-NODEPORTS rules."""
    if view is not None:
        return {(sp.protocol.lower(), sp.node_port): sp for sp in view.service_ports(NODEPORT_TYPES) if sp.node_port}
    d = active_dump(evidence, node)
    return {(e.protocol, e.port): None for e in kipt.nodeport_entries(d.rules)} if d else {}


@LISTENER.judge
def judge_listener(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    out: list[Finding] = []
    for node in evidence.nodes():
        ev = evidence.get("sockets", node)
        owners = _nodeports(view, evidence, node) if ev is not None else {}
        if ev is None or not owners:
            continue
        if not ev.ok or not isinstance(ev.data, list):
            out.append(LISTENER.skip(f"{node}: sockets not collected ({ev.error})", nodes=[node]))
            continue
        hits = [s for s in ev.data if (str(s.get("proto", "")).lower(), s.get("port")) in owners
                and (s.get("state") == "LISTEN" or s.get("proto") == "udp")]
        # An unknown owner (the probe runs without hostPID) may be kube-proxy's pre-1.24 port opener:
        # only a process we can name as someone else is a conflict.
        squatters = [s for s in hits if s.get("process") not in ("kube-proxy", None)]
        unknown = [s for s in hits if s.get("process") is None]
        plist = ", ".join(f"{p}/{proto}" for proto, p in sorted(owners, key=lambda k: k[1]))
        if not squatters:
            note = (" (sockets held by a process the probe cannot name: on Kubernetes < 1.24 that is kube-proxy's "
                    "port opener; run the probe with hostPID to be sure)" if unknown else
                    " (kube-proxy holds them: its pre-1.24 port opener)" if hits else "")
            out.append(LISTENER.ok(
                f"{node}: no host process listens on NodePorts {plist}{note}. That is normal: NodePorts are DNAT "
                "rules, not listeners; ss -ltn shows nothing since 1.24", nodes=[node],
                evidence=[EvidenceRef.to(ev, f"no socket bound to {plist}")]))
            continue
        first = squatters[0]
        sp = owners[(str(first.get("proto")).lower(), first.get("port"))]
        socks = [f"{s.get('process') or 'unknown process'} on {s.get('local')}:{s.get('port')}/{s.get('proto')}"
                 for s in squatters]
        out.append(LISTENER.warn(
            f"{node}: a host process listens on a NodePort: {'; '.join(socks)}"
            f"{f' (the NodePort of {sp.ref})' if sp else ''}. kube-proxy DNATs that port away before the process "
            "sees external traffic, and local clients reach the Service instead: a conflict",
            nodes=[node], services=[f"{sp.namespace}/{sp.name}"] if sp else [],
            evidence=[EvidenceRef.to(ev, "\n".join(socks))],
            values={"node": node, "port": first.get("port"), "namespace": sp.namespace if sp else "<namespace>",
                    "name": sp.name if sp else "<service>"}))
    return out


# -- nodeport.etp-local ---------------------------------------------------------------------------
@ETP_LOCAL.judge
def judge_etp_local(view: ClusterView | None, evidence: EvidenceSet) -> list[Finding]:
    assert view is not None
    ready = {sp: [e for e in view.endpoints(sp) if e.ready] for sp in view.service_ports(NODEPORT_TYPES)
             if sp.node_port and sp.external_traffic_policy == "Local"}
    local_ports = [sp for sp, eps in ready.items() if eps]
    if not local_ports:
        return []
    nodes = sorted(set(evidence.nodes()) & set(view.node_names())) or view.node_names()
    out: list[Finding] = []
    for node in nodes:
        d = active_dump(evidence, node)
        drops = {b.port: b.rule.line for b in kipt.blocked_services(d.rules) if b.reason == "no local endpoints"} \
            if d else {}
        served, dropped, lines, drop_lines = [], [], [], []
        for sp in local_ports:
            svl = f"KUBE-SVL-{kipt.chain_hash(sp.ref, sp.protocol)}"
            if any(e.node == node for e in ready[sp]):
                served.append(sp)
                if d:
                    lines += [r.line for r in d.rules.rules("nat", svl)]
            else:
                dropped.append(sp)
                if d:
                    drop_lines.append(drops.get(sp.node_port) or f"no {svl} chain on {node} (and no 'has no local "
                                      f"endpoints' rule for --dport {sp.node_port})")
        if dropped:
            first = dropped[0]
            names = ", ".join(f"{sp.ref} ({port_label(sp)})" for sp in dropped)
            ports = ",".join(str(sp.node_port) for sp in dropped)
            out.append(ETP_LOCAL.warn(
                f"{node}: external traffic to {node}:{ports} is dropped by design: {names} has "
                f"externalTrafficPolicy Local and no endpoint on {node} (not a kube-proxy fault)",
                nodes=[node], services=sorted({f"{sp.namespace}/{sp.name}" for sp in dropped}),
                evidence=[ref(d, drop_lines)] if d else [],
                values={"node": node, "ports": ports, "namespace": first.namespace, "name": first.name}))
        else:
            gap = " (but its KUBE-SVL chain is missing: see nodeport.rules)" if d and not lines else ""
            out.append(ETP_LOCAL.ok(
                f"{node}: has a local endpoint for {', '.join(sp.ref for sp in served)}: external traffic is "
                f"served with the client IP kept{gap}", nodes=[node], evidence=[ref(d, lines)] if d and lines else []))
    return out
