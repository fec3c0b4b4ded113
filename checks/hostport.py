"""hostPort: the CNI portmap plugin that implements it, and the hostNetwork pods where it does nothing.

hostPort is not implemented by kube-proxy or kubelet but by the chained CNI plugin `portmap`,
which DNATs <node>:<hostPort> to the pod. Without portmap in the conflist the runtime actually
uses, or without its binary, the hostPort is silently a no-op. On a hostNetwork pod there is no
CNI call and no NAT at all: the app itself must listen on the port.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Iterable

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Evidence, EvidenceRef, Finding, Remediation
from k8snetdoctor.rule import CLUSTER, EvidenceSet, Rule, inventory_ref

PORTMAP_JSON = '{{"type":"portmap","capabilities":{{"portMappings":true}},"snat":true}}'

PORTMAP = Rule(
    id="hostport.portmap",
    title="hostPorts are mapped by the CNI portmap plugin",
    description=(
        "A non-hostNetwork pod's hostPort works only if the first conflist in the CNI config dir (the one "
        "the runtime uses) chains `portmap` with capabilities.portMappings, the portmap binary is in the CNI "
        "bin dir, and portmap has written CNI-HOSTPORT-DNAT / CNI-DN-* DNAT rules for the port. Missing any "
        "of the three, connections to <nodeIP>:<hostPort> are refused with no error anywhere obvious."
    ),
    severity="high",
    needs=(CLUSTER, "cni", "iptables-save"),
    wants=("nft-ruleset",),
    failureModes=("FM-22",),
    references=("https://www.cni.dev/plugins/current/meta/portmap/",
                "https://github.com/flannel-io/flannel/issues/890",
                "https://github.com/containernetworking/plugins/issues/275"),
    remediation=Remediation(summary="Make portmap serve hostPorts on {node}, then recreate the affected pods."),
    explains=("hostport.reachable",),   # the hostPort refused on that same node
)
FIX_CONFLIST = Remediation(commands={
    "generic": [f"jq '.plugins += [{PORTMAP_JSON}]' {{conf_path}} > /tmp/cni.conflist && mv /tmp/cni.conflist {{conf_path}}   # on {{node}}"],
    "k3s": ["# k3s writes its own conflist with portmap; a file sorting before it in {conf_dir} takes precedence: remove it"],
})
FIX_BINARY = Remediation(commands={
    "generic": ["curl -fsSL https://github.com/containernetworking/plugins/releases/download/v1.5.1/cni-plugins-linux-amd64-v1.5.1.tgz"
                " | tar -xz -C {bin_dir} ./portmap   # on {node}; pick your arch"],
    "kubeadm": ["apt-get install -y kubernetes-cni   # or: dnf install -y kubernetes-cni (on {node})"],
    "k3s": ["ls /var/lib/rancher/k3s/data/current/bin/portmap   # k3s ships portmap there; reinstall k3s if it is gone"],
})
FIX_RULES = Remediation(commands={
    "generic": ["journalctl -u containerd -u crio -u kubelet --since -1h | grep -i portmap   # on {node}: why the ADD failed",
                "iptables-save -t nat | grep -E 'CNI-HOSTPORT-DNAT|CNI-DN-'; nft list table ip cni_hostport   # portmap's nftables backend"],
})

HOSTNETWORK = Rule(
    id="hostport.hostnetwork",
    title="hostPort on hostNetwork pods matches what the app listens on",
    description=(
        "For a hostNetwork pod the CNI plugin is never called, so a hostPort maps nothing: it only tells the "
        "scheduler the port is taken. hostPort must equal containerPort, and the application itself must "
        "listen on it in the node's network namespace; `curl <node>:<hostPort>` otherwise gets connection refused."
    ),
    severity="medium",
    needs=(CLUSTER,),
    wants=("sockets",),
    failureModes=("FM-23",),
    references=("https://github.com/kubernetes/kubernetes/issues/110445",
                "https://kubernetes.io/docs/concepts/configuration/overview/#services"),
    remediation=Remediation(
        summary="Make the app in {pod} listen on {host_port}, or drop hostNetwork and let portmap map the hostPort.",
        commands={"generic": ["kubectl -n {namespace} get pod {name} -o yaml | grep -B2 -A3 hostPort",
                              "ss -ltnup | grep -w {host_port}   # on {node}: nothing here means the app listens elsewhere",
                              "# either configure the app to listen on {host_port}, or remove hostNetwork: true (the hostPort is then DNATed by portmap)"]},
    ),
)


@dataclass(frozen=True)
class HostPort:
    namespace: str
    name: str
    phase: str
    proto: str
    host_port: int
    container_port: int
    host_ip: str | None
    pod_ip: str | None
    host_network: bool
    node: str

    @property
    def label(self) -> str:
        return f"{self.host_port}/{self.proto.upper()} of pod {self.namespace}/{self.name}"


def host_ports(pods: Iterable[dict[str, Any]]) -> list[HostPort]:
    """Every container port with a hostPort on pods that still hold it (not Succeeded/Failed)."""
    out = []
    for pod in pods:
        spec, status, meta = pod.get("spec", {}), pod.get("status", {}), pod.get("metadata", {})
        phase = status.get("phase") or "Running"
        if phase in ("Succeeded", "Failed"):
            continue
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("hostPort"):
                    out.append(HostPort(meta.get("namespace", "default"), meta.get("name", "?"), phase,
                                        (p.get("protocol") or "TCP").lower(), int(p["hostPort"]),
                                        int(p.get("containerPort") or 0), p.get("hostIP"), status.get("podIP"),
                                        bool(spec.get("hostNetwork")), spec.get("nodeName") or "(unscheduled)"))
    return out


# -- what portmap wrote -------------------------------------------------------------------------
def nat_rules(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(chain, options) for each `-A` line of the nat table; options keep the flags portmap uses."""
    rules, table = [], None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "nat" and line.startswith("-A "):
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            opts: dict[str, Any] = {}
            for flag, value in zip(words[2:], words[3:]):
                if flag in ("-p", "--dport", "--dports", "--destination-ports", "-j", "--to-destination", "-d"):
                    opts[flag] = value
            rules.append((words[1], opts))
    return rules


def dnat_status(hp: HostPort, rules: list[tuple[str, dict[str, Any]]]) -> tuple[bool, str]:
    """(mapped?, what was found) for one hostPort in one nat table dump."""
    want = f"{hp.pod_ip}:{hp.container_port}"
    dnat = [(c, o) for c, o in rules if c.startswith("CNI-DN-") and o.get("-j") == "DNAT"
            and o.get("-p") == hp.proto and o.get("--dport") == str(hp.host_port)]
    chains = {c for c, o in dnat if o.get("--to-destination") == want}
    entered = any(c == "CNI-HOSTPORT-DNAT" and o.get("-j") in chains for c, o in rules)
    hooked = any(c == "PREROUTING" and o.get("-j") == "CNI-HOSTPORT-DNAT" for c, o in rules)
    if chains and entered and hooked:
        return True, f"{sorted(chains)[0]}: -p {hp.proto} --dport {hp.host_port} -j DNAT --to-destination {want}"
    if chains and not hooked:
        return False, "DNAT rule present but PREROUTING does not jump to CNI-HOSTPORT-DNAT"
    if chains:
        return False, f"{sorted(chains)[0]} exists but CNI-HOSTPORT-DNAT does not jump to it"
    if dnat:
        return False, (f"CNI-DN DNAT for {hp.proto}/{hp.host_port} points to {dnat[0][1].get('--to-destination')}, "
                       f"not the pod's {want}: a leftover from an old sandbox")
    return False, f"no CNI-HOSTPORT-DNAT/CNI-DN-* DNAT rule for {hp.proto}/{hp.host_port} -> {want} in the nat table"


def nft_dnat(hp: HostPort, ruleset: Any) -> bool:
    """portmap's nftables backend: table ip cni_hostport, `<proto> dport <hostPort> dnat to <pod>:<port>`."""
    for item in (ruleset or {}).get("nftables", []) if isinstance(ruleset, dict) else []:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not rule or rule.get("table") != "cni_hostport":
            continue
        port_ok = dnat_ok = False
        for ex in rule.get("expr") or []:
            m = ex.get("match") or {}
            payload = (m.get("left") or {}).get("payload") or {}
            if payload.get("protocol") == hp.proto and payload.get("field") == "dport" and m.get("right") == hp.host_port:
                port_ok = True
            d = ex.get("dnat") or {}
            if d.get("addr") == hp.pod_ip and d.get("port") == hp.container_port:
                dnat_ok = True
        if port_ok and dnat_ok:
            return True
    return False


def active_conf(cni: dict[str, Any]) -> tuple[dict | None, list[str]]:
    """The file the runtime uses (lexically first that parses) and the broken files skipped before it."""
    files = sorted(cni.get("files") or [], key=lambda f: f.get("name") or f.get("path") or "")
    skipped = []
    for f in files:
        if f.get("error"):
            skipped.append(f"{f.get('name')} ({f['error']})")
            continue
        return f, skipped
    return None, skipped


def conf_problem(cni: dict[str, Any]) -> str | None:
    conf, skipped = active_conf(cni)
    note = f" (skipped unparsable: {', '.join(skipped)})" if skipped else ""
    if conf is None:
        return f"no usable CNI config in {cni.get('confDir')}{note}"
    name, plugins = conf.get("name"), conf.get("plugins") or []
    if conf.get("portMappings"):
        return None
    if "portmap" in plugins:
        return f"{name} lists portmap without capabilities {{\"portMappings\": true}}: the runtime passes it no mappings{note}"
    later = next((f.get("name") for f in cni.get("files") or [] if f.get("portMappings") and f is not conf), None)
    why = f"; {later} has it but {name} sorts first and is the one the runtime uses" if later else ""
    kind = "a single-plugin .conf (cannot chain portmap)" if conf.get("format") == "conf" else f"plugins: {', '.join(map(str, plugins))}"
    return f"{name} has no portmap plugin ({kind}){why}{note}"


# -- hostport.portmap -----------------------------------------------------------------------------
@PORTMAP.judge
def judge_portmap(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    wanted = [hp for hp in host_ports(view.pods) if not hp.host_network]
    if not wanted:
        return [PORTMAP.ok("no non-hostNetwork pod uses a hostPort")]
    out = []
    for node in sorted({hp.node for hp in wanted}):
        hps = [hp for hp in wanted if hp.node == node]
        cni_ev = evidence.get("cni", node)
        if cni_ev is None or not cni_ev.ok:
            out.append(PORTMAP.skip(f"{node}: no cni evidence" + (f" ({cni_ev.error})" if cni_ev else "")
                                    + f" for hostPort {', '.join(hp.label for hp in hps)}", nodes=[node]))
            continue
        out.append(_portmap_node(node, hps, cni_ev, evidence))
    return out


def _portmap_node(node: str, hps: list[HostPort], cni_ev: Evidence, evidence: EvidenceSet) -> Finding:
    cni = cni_ev.data or {}
    conf, _ = active_conf(cni)
    conf_issue = conf_problem(cni)
    bins = cni.get("binaries")
    bin_issue = f"{cni.get('binDir')}/portmap is missing" if bins is not None and "portmap" not in bins else None
    tables = [e for e in evidence.all("iptables-save", node) if e.ok]
    nft = [e for e in evidence.all("nft-ruleset", node) if e.ok]
    problems, lines, parts = [], [], []
    for hp in hps:
        missing = [m for m in (conf_issue, bin_issue) if m]
        if hp.phase == "Running" and hp.pod_ip and tables:
            results = [(e, *dnat_status(hp, nat_rules((e.data or {}).get("text", "")))) for e in tables]
            hit = next(((e, seen) for e, ok, seen in results if ok), None)
            if hit:
                lines.append(f"{hit[0].source}: {hit[1]}")
            elif any(nft_dnat(hp, e.data) for e in nft):
                lines.append(f"nft table ip cni_hostport: {hp.proto} dport {hp.host_port} dnat to {hp.pod_ip}:{hp.container_port}")
            else:
                missing.append(results[0][2])
                lines += [f"{e.source}: {seen}" for e, _, seen in results]
        elif not tables:
            lines.append("nat rules not checked: no iptables-save evidence")
        if missing:
            problems.append(f"hostPort {hp.label} (-> {hp.pod_ip or '?'}:{hp.container_port}): " + "; ".join(missing))
    if bin_issue:
        parts.append(FIX_BINARY)
    if conf_issue:
        parts.append(FIX_CONFLIST)
    if problems and not (bin_issue or conf_issue):
        parts.append(FIX_RULES)
    refs = [EvidenceRef.to(cni_ev)] + ([EvidenceRef.to(tables[0], "\n".join(lines))] if tables and lines else [])
    if not problems:
        return PORTMAP.ok(f"{node}: {len(hps)} hostPort(s) mapped by portmap ({', '.join(hp.label for hp in hps)})",
                          nodes=[node], evidence=refs)
    recreate = [f"kubectl -n {hp.namespace} delete pod {hp.name}   # recreate so portmap runs for it" for hp in hps]
    rem = Remediation.combine(PORTMAP.remediation, *parts, common=recreate)
    values = {"node": node, "conf_path": (conf or {}).get("path") or f"{cni.get('confDir')}/<file>",
              "conf_dir": cni.get("confDir"), "bin_dir": cni.get("binDir") or "/opt/cni/bin"}
    return PORTMAP.fail(f"{node}: " + " | ".join(problems) + " (FM-22)", nodes=[node], evidence=refs,
                        values=values, remediation=rem)


# -- hostport.hostnetwork -------------------------------------------------------------------------
@HOSTNETWORK.judge
def judge_hostnetwork(view: ClusterView, evidence: EvidenceSet) -> list[Finding]:
    hps = [hp for hp in host_ports(view.pods) if hp.host_network]
    if not hps:
        return [HOSTNETWORK.ok("no hostNetwork pod declares a hostPort")]
    out = []
    for node in sorted({hp.node for hp in hps}):
        sock = evidence.get("sockets", node)
        sock = sock if sock is not None and sock.ok else None
        mine = [hp for hp in hps if hp.node == node]
        verdicts = [_hostnet_verdict(hp, sock, view.internal_ip(node)) for hp in mine]
        status = min((v[0] for v in verdicts), key=("fail", "warn", "pass", "skip").index)
        worst = mine[[v[0] for v in verdicts].index(status)]
        values = {"node": node, "pod": f"{worst.namespace}/{worst.name}", "namespace": worst.namespace,
                  "name": worst.name, "host_port": worst.host_port}
        refs = [inventory_ref("\n".join(f"Pod {hp.namespace}/{hp.name} on {node}: hostNetwork=true, hostPort "
                                         f"{hp.host_port}/{hp.proto.upper()} -> containerPort {hp.container_port}"
                                         for hp in mine))]
        if sock:
            refs.append(EvidenceRef.to(sock, "\n".join(v[2] for v in verdicts if v[2])))
        shown = [v[1] for v in verdicts if v[0] == status or status == "pass"]
        out.append(HOSTNETWORK.finding(status, f"{node}: " + "; ".join(shown) + (" (FM-23)" if status in ("fail", "warn") else ""),
                                       nodes=[node], evidence=refs, values=values,
                                       severity="low" if status == "warn" else None))
    return out


def _hostnet_verdict(hp: HostPort, sock: Evidence | None, node_ip: str | None) -> tuple[str, str, str]:
    """(status, message, evidence line) for one hostPort of one hostNetwork pod."""
    what = f"hostNetwork pod {hp.namespace}/{hp.name} hostPort {hp.host_port}/{hp.proto.upper()}"
    found = _listeners(sock, hp, node_ip) if sock else []
    line = "\n".join(found) or (f"no reachable {hp.proto} socket on port {hp.host_port}" if sock else "")
    if hp.host_port != hp.container_port:
        return ("fail", f"{what} with containerPort {hp.container_port}: nothing maps {hp.host_port} to "
                        f"{hp.container_port} on hostNetwork, the app is reached only on the port it listens on", line)
    if sock is None:
        return ("warn", f"{what} maps nothing: the app must itself listen on {hp.host_port} "
                        f"(no sockets evidence from the node to confirm)", "")
    if hp.phase != "Running":
        return "skip", f"{what}: pod is {hp.phase}, listeners not judged", ""
    if found:
        return "pass", f"{what}: {', '.join(found)}", line
    return ("fail", f"{what}: nothing listens on {hp.host_port}/{hp.proto.upper()}; hostPort maps nothing on "
                    f"hostNetwork, so connections are refused until the app listens on {hp.host_port} itself", line)


def _listeners(sock: Evidence, hp: HostPort, node_ip: str | None) -> list[str]:
    """Sockets on the hostPort that outside clients can reach (wildcard, the node IP, or its hostIP)."""
    reachable = {"0.0.0.0", "::", "*", node_ip, hp.host_ip}
    return [f"{s.get('process') or 'a process'} on {_hostport(s.get('local'), s.get('port'))}" for s in sock.data or []
            if s.get("proto") == hp.proto and s.get("port") == hp.host_port and s.get("local") in reachable]


def _hostport(addr: str | None, port: int | None) -> str:
    return f"[{addr}]:{port}" if addr and ":" in addr else f"{addr}:{port}"


