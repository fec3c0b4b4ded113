"""Bringing a lab up and down.

`build` turns a LabSpec into namespaces, links, rules, files and processes, recording each in
the state file before or as it is made; `teardown` undoes exactly what the state file lists.
Per-node work runs in parallel threads (each step is one `ip -batch` or iptables-restore
process), which is what keeps a 10-node lab well under a minute on two cores.
"""
from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.lab import dns, flannel, hostroot, kubeproxy_rules, netns, portmap, procs, sg
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.names import ETC_NETNS, STATE_ROOT, Names
from k8snetdoctor.lab.rules import Ruleset
from k8snetdoctor.lab.state import LabState, ProcRecord
from k8snetdoctor.lab.view import cluster_view

ECHO_SCRIPT = Path(__file__).with_name("echo.py")
TOOLS = ("ip", "bridge", netns.IPTABLES_RESTORE, netns.IPTABLES_SAVE, "sysctl", "dnsmasq")
BR_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
NO_BR_NETFILTER = ("br_netfilter is not loaded on this host, so bridged pod traffic skips iptables: "
                   "Service traffic between pods of one node will fail (FM-16). `modprobe br_netfilter` "
                   "before `lab up` to avoid it.")


def node_ruleset(view: ClusterView, lab: S.LabSpec, node: str) -> Ruleset:
    """All of a node's iptables: security group, kube-proxy, flannel masquerade, portmap."""
    n = lab.node(node)
    cidr_of = {p.ip: lab.node(p.node).pod_cidr for p in lab.pods}
    return Ruleset().merge(
        sg.ruleset(),
        kubeproxy_rules.ruleset(view, node),
        flannel.masq_ruleset(n),
        portmap.ruleset(portmap.mappings(view, node), cidr_of),
    )


def veth_name(pod: S.PodSpec) -> str:
    """The host side of a pod's veth, named like the bridge plugin's (veth + 8 hex)."""
    return "veth" + pod.sandbox_id[:8]


# -- up -----------------------------------------------------------------------------------
def build(lab: S.LabSpec, state: LabState, workers: int = 8) -> None:
    names = Names(lab.name)
    netns.require(*TOOLS)
    _precheck(names, state)
    if not BR_NETFILTER.exists():
        state.add_warning(NO_BR_NETFILTER)
    all_ns = [names.lan, names.router, names.external] + [names.node(n.name) for n in lab.nodes] \
        + [names.pod(p.name) for p in lab.pods]
    state.add_namespaces(all_ns)          # recorded first: a crash from here on is still cleaned up
    netns.add_netns(all_ns)
    _wire_underlay(lab, names)
    view = cluster_view(lab)
    with ThreadPoolExecutor(max_workers=workers) as ex:
        for fut in [ex.submit(_program_node, lab, names, view, n) for n in lab.nodes]:
            fut.result()
        for fut in [ex.submit(_write_files, lab, names, state, n) for n in lab.nodes]:
            fut.result()
    recs = start_processes(lab, names, state)
    procs.wait_ready(recs)
    state.set_status("up")


def node_sysctls() -> dict[str, int]:
    """ip_forward as kubeadm requires; bridge-nf-call-iptables only where br_netfilter exists.

    The lab never loads kernel modules itself: that would change the host's own bridges.
    """
    values = {"net.ipv4.ip_forward": 1}
    if BR_NETFILTER.exists():
        values["net.bridge.bridge-nf-call-iptables"] = 1
    return values


def _precheck(names: Names, state: LabState) -> None:
    clash = sorted(n for n in netns.list_netns() if names.owns(n) and n not in state.namespaces)
    if clash:
        raise netns.LabError(f"namespaces of a lab named {names.lab!r} already exist: {', '.join(clash)}; "
                             f"run `netdoctor lab down {names.lab}` first")


def _wire_underlay(lab: S.LabSpec, names: Names) -> None:
    lan = ["link set lo up", "link add br0 type bridge", f"link set br0 mtu {S.UNDERLAY_MTU} up",
           f"link add router type veth peer name eth0 netns {names.router}", "link set router master br0 up"]
    for n in lab.nodes:
        lan += [f"link add {n.name} type veth peer name eth0 netns {names.node(n.name)}",
                f"link set {n.name} master br0 up"]
    netns.ip_batch(names.lan, lan)
    prefix = S.UNDERLAY_CIDR.split("/")[1]
    ext_prefix = S.EXTERNAL_CIDR.split("/")[1]
    netns.ip_batch(names.router, [
        "link set lo up", f"addr add {S.ROUTER_LAN_IP}/{prefix} dev eth0", "link set eth0 up",
        f"link add eth1 type veth peer name eth0 netns {names.external}",
        f"addr add {S.ROUTER_EXT_IP}/{ext_prefix} dev eth1", "link set eth1 up"])
    netns.ip_batch(names.external, [
        "link set lo up", *[f"addr add {ip}/{ext_prefix} dev eth0"
                            for ip in (S.EXTERNAL_IP, S.UPSTREAM_DNS_IP, S.EXAMPLE_IP)],
        "link set eth0 up", f"route add default via {S.ROUTER_EXT_IP}"])
    netns.sysctl(names.router, {"net.ipv4.ip_forward": 1})


def _program_node(lab: S.LabSpec, names: Names, view: ClusterView, node: S.NodeSpec) -> None:
    ns = names.node(node.name)
    prefix = S.UNDERLAY_CIDR.split("/")[1]
    lines = ["link set lo up", f"addr add {node.ip}/{prefix} dev eth0",
             f"link set eth0 mtu {S.UNDERLAY_MTU} up", f"route add default via {S.ROUTER_LAN_IP}",
             "link add cni0 type bridge", f"addr add {node.gateway}/24 dev cni0",
             f"link set cni0 mtu {S.VXLAN_MTU} up"]
    lines += flannel.link_lines(node)
    peers = [p for p in lab.nodes if p.name != node.name]
    for peer in peers:
        lines += flannel.peer_ip_lines(peer)
    pods = lab.pods_on(node.name)
    for pod in pods:
        v = veth_name(pod)
        lines += [f"link add {v} mtu {S.VXLAN_MTU} type veth peer name eth0 mtu {S.VXLAN_MTU} "
                  f"netns {names.pod(pod.name)}",
                  f"link set {v} master cni0", f"link set dev {v} type bridge_slave hairpin on", f"link set {v} up"]
    netns.ip_batch(ns, lines)
    netns.bridge_batch(ns, [line for peer in peers for line in flannel.peer_fdb_lines(peer)])
    for pod in pods:
        netns.ip_batch(names.pod(pod.name), [
            "link set lo up", f"addr add {pod.ip}/24 dev eth0", "link set eth0 up",
            f"route add default via {node.gateway}"])
    netns.sysctl(ns, node_sysctls())
    netns.iptables_restore(ns, node_ruleset(view, lab, node.name).render(f"netdoctor lab {lab.name} {node.name}"))


def _write_files(lab: S.LabSpec, names: Names, state: LabState, node: S.NodeSpec) -> None:
    hostroot.write(names.host_root(node.name), node, lab)
    # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf, so commands run in a pod resolve
    # cluster names the way the pod would.
    targets = [(names.node(node.name), dns.node_resolv_conf())]
    targets += [(names.pod(p.name), hostroot.pod_resolv(p)) for p in lab.pods_on(node.name)]
    for ns, text in targets:
        d = names.etc_netns(ns)
        state.add_path(d)
        d.mkdir(parents=True, exist_ok=True)
        (d / "resolv.conf").write_text(text)


def echo_argv(name: str, node: str, role: str, ports: list[int], bind: str = "0.0.0.0") -> list[str]:
    argv = [sys.executable, "-I", "-S", str(ECHO_SCRIPT), "--name", name, "--node", node, "--role", role,
            "--bind", bind]
    for p in ports:
        argv += ["--port", str(p)]
    return argv


def start_processes(lab: S.LabSpec, names: Names, state: LabState) -> list[ProcRecord]:
    logs = names.log_dir
    recs = [
        procs.start(state, names.external, "upstream-dns", "upstream-dns", dns.upstream_argv(),
                    ["udp:53", "tcp:53"], logs),
        procs.start(state, names.external, "internet-web", "example-com",
                    echo_argv("example.com", "", "internet-web", [80], S.EXAMPLE_IP), ["tcp:80"], logs),
    ]
    for n in lab.nodes:
        ns = names.node(n.name)
        recs.append(procs.start(state, ns, "kubelet", f"kubelet-{n.name}",
                                echo_argv(f"kubelet-{n.name}", n.name, "kubelet", [S.KUBELET_PORT]),
                                [f"tcp:{S.KUBELET_PORT}"], logs))
        if n.control_plane:
            recs.append(procs.start(state, ns, "kube-apiserver", f"kube-apiserver-{n.name}",
                                    echo_argv(f"kube-apiserver-{n.name}", n.name, "kube-apiserver",
                                              [S.APISERVER_PORT]), [f"tcp:{S.APISERVER_PORT}"], logs))
    for p in lab.pods:
        ns = names.pod(p.name)
        if p.kind == "echo":
            recs.append(procs.start(state, ns, "pod", p.name, echo_argv(p.name, p.node, "pod", [S.ECHO_PORT]),
                                    [f"tcp:{S.ECHO_PORT}"], logs))
        elif p.kind == "dns":
            recs.append(procs.start(state, ns, "coredns", p.name, dns.coredns_argv(lab, p), ["udp:53", "tcp:53"],
                                    logs))
    return recs


# -- down ---------------------------------------------------------------------------------
def teardown(state: LabState) -> dict[str, Any]:
    """Stop recorded processes, delete recorded namespaces and files; safe to run again.

    Only names carrying this lab's prefix are acted on, so even a damaged state file cannot
    make `down` delete another lab's namespace or an unrelated path.
    """
    names = Names(state.name)
    if state.status != "deleting":
        state.set_status("deleting")
    targets = [r for r in state.processes + procs.strays(state) if r.pid > 0 and names.owns(r.ns)]
    stuck = procs.stop(targets)
    namespaces = [n for n in state.namespaces if names.owns(n)]
    strays = {ns: pids for ns in namespaces if (pids := netns.pids_in(ns))}
    left = netns.delete_netns(namespaces)
    for p in map(Path, state.paths):
        if p.parent == ETC_NETNS and names.owns(p.name):
            shutil.rmtree(p, ignore_errors=True)
    shutil.rmtree(names.state_dir, ignore_errors=True)
    _rmdir_if_empty(ETC_NETNS)
    result = {"name": state.name, "processesStopped": len(targets) - len(stuck),
              "processesStuck": [r.pid for r in stuck], "namespacesDeleted": len(namespaces) - len(left),
              "namespacesLeft": left, "unrecordedProcesses": strays}
    if not left and not stuck:
        state.remove_file()
        _rmdir_if_empty(STATE_ROOT)
    return result


def _rmdir_if_empty(path: Path) -> None:
    """Shared parents (/etc/netns, the state root) go only when no other lab uses them."""
    try:
        path.rmdir()
    except OSError:
        pass
