"""The fault catalogue: named, reversible breakages of a running lab, each reproducing failure
modes of knowledge/failure-modes.md.

A fault is declared once, below, with what a reader needs: its kind — "config" when the rules
already judge it from node facts and the inventory (`rules` names those expected to fail),
"behaviour" when only sending packets or DNS queries shows it — its FM ids, and on which
node (and peer) it acts by default. What it does is in faults_impl.py. Active faults are
recorded in the lab's state file, so `netdoctor lab status` and `lab clear` work from any
process, and a fault that changes what the API would say changes `Lab.view()` too.

    from k8snetdoctor.lab import faults
    faults.apply(lab, "vxlan-blocked")                 # node-1 <-> node-2 by default
    faults.clear(lab, "vxlan-blocked")                 # or faults.clear(lab) for all
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from k8snetdoctor.errors import UsageProblem
from k8snetdoctor.lab import faults_impl as I
from k8snetdoctor.lab import faults_net as net
from k8snetdoctor.lab import spec as S
from k8snetdoctor.model import utcnow

if TYPE_CHECKING:  # pragma: no cover
    from k8snetdoctor.lab.lab import Lab

Kind = Literal["config", "behaviour"]
Step = Callable[["Lab", dict[str, Any]], None]


def _nothing(lab: "Lab", record: dict[str, Any]) -> None:
    """Faults made only of iptables edits and view overrides need no undo of their own."""


@dataclass(frozen=True)
class Choice:
    """Which nodes a fault's --node (or --peer) may name; the first allowed one is the default.

    `allowed(spec, node)` gets the chosen --node when it picks a --peer. `optional` choices
    default to none (sg-closed without --peer closes the port to the whole outside).
    """

    allowed: Callable[[S.LabSpec, str | None], list[str]]
    why: str
    optional: bool = False


def _order(spec: S.LabSpec, names: list[str]) -> list[str]:
    """Workers first (the first worker is every fault's usual target), the control plane last."""
    return [n.name for n in spec.workers if n.name in names] + [n.name for n in spec.nodes
                                                                 if n.control_plane and n.name in names]


ANY = Choice(lambda s, _: _order(s, s.node_names), "any node")
WORKER = Choice(lambda s, _: _order(s, [n.name for n in s.workers]), "a worker (not the control plane)")
OTHER = Choice(lambda s, node: _order(s, [n for n in s.node_names if n != node]), "a node other than --node")
OTHER_OPTIONAL = Choice(OTHER.allowed, "a node other than --node", optional=True)
HOSTPORT = Choice(lambda s, _: _order(s, sorted({p.node for p in I.hostport_pods(s)})),
                  "a node running a pod with a hostPort (only there does portmap matter)")
NOT_COREDNS = Choice(lambda s, _: _order(s, [n for n in s.node_names if n != I.coredns_pod(s).node]),
                     "a node CoreDNS does not run on")
COREDNS = Choice(lambda s, _: [I.coredns_pod(s).node], "the node CoreDNS runs on")


@dataclass(frozen=True)
class Fault:
    """One catalogue entry. `apply`/`clear` get (lab, record); the record is what the state file keeps."""

    name: str
    kind: Kind
    fm: tuple[str, ...]
    description: str
    apply: Step
    clear: Step = _nothing
    rules: tuple[str, ...] = ()            # config faults: the rules that must fail, with the node in scope
    node: Choice | None = ANY
    peer: Choice | None = None


CATALOGUE: tuple[Fault, ...] = (
    # -- flannel VXLAN ----------------------------------------------------------------------------------
    Fault("vxlan-blocked", "behaviour", ("FM-01", "FM-13"),
          "UDP 8472 dropped between --node and --peer by their security groups: pods of that pair cannot talk, "
          "every other pair can", I.apply_vxlan_blocked, node=ANY, peer=OTHER),
    Fault("mtu-mismatch", "config", ("FM-08",),
          "--node's underlay NIC shrank to MTU 1400 (a VPN or cloud network) while flannel.1 keeps 1450: "
          "full-size pod packets no longer fit once VXLAN adds 50 bytes", I.apply_mtu_mismatch, I.clear_mtu_mismatch,
          rules=("flannel.mtu",)),
    Fault("vtep-wrong-ip", "config", ("FM-07", "FM-05"),
          "--node's public-ip annotation names 198.51.100.x, an address on no interface (a NAT or hand-edited "
          "address); peers' flanneld believed it and send its VXLAN there", I.apply_vtep_wrong_ip,
          I.clear_vtep_wrong_ip, rules=("flannel.vtep-address",)),
    Fault("fdb-stale", "config", ("FM-09",),
          "--node still has --peer's old VTEP MAC in its FDB and neighbour table (the peer's flannel.1 was "
          "recreated, flanneld missed it): --node's pods cannot reach --peer's", I.apply_fdb_stale,
          I.clear_fdb_stale, rules=("flannel.peers",), peer=OTHER),
    Fault("no-podcidr", "config", ("FM-10",),
          "--node has no spec.podCIDR: flanneld there exits with 'pod cidr not assigned' (no flannel.1, no "
          "annotations) and no peer has a route to it", I.apply_no_podcidr, I.clear_no_podcidr,
          rules=("flannel.podcidr",)),
    # -- kube-proxy / NodePort ----------------------------------------------------------------------
    Fault("nodeport-rules-missing", "config", ("FM-18",),
          "KUBE-NODEPORTS emptied on --node (a firewall reload flushed it; kube-proxy there is wedged and never "
          "rewrites it): NodePorts are refused on --node and work elsewhere", I.apply_nodeport_rules_missing,
          rules=("nodeport.rules",)),
    Fault("kube-proxy-stale", "config", ("FM-18",),
          "Service default/late-nodeport (NodePort 30083) created after kube-proxy on --node stopped: every other "
          "node has its rules, --node still serves only the older Services", I.apply_kube_proxy_stale,
          rules=("nodeport.rules",)),
    Fault("iptables-backend-split", "config", ("FM-12",),
          "a stale copy of kube-proxy's rules (from before echo-local existed) left in iptables-legacy on --node "
          "while the current ones live in nft: the kernel runs both", I.apply_backend_split, I.clear_backend_split,
          rules=("kubeproxy.backend-split",)),
    Fault("etp-local-no-endpoint", "behaviour", ("FM-14",),
          "echo-nodeport switched to externalTrafficPolicy Local while --node's echo pod is not ready: NodePort "
          "30080 drops on --node (and on nodes without an echo pod) by design, answers elsewhere",
          I.apply_etp_local_no_endpoint),
    Fault("sg-closed", "behaviour", ("FM-01", "FM-02"),
          "NodePort 30080 closed in --node's security group, to everything outside the VPC (or only to --peer "
          "when given): it answers on every other node", I.apply_sg_closed, peer=OTHER_OPTIONAL),
    # -- hostPort ------------------------------------------------------------------------------------
    Fault("portmap-missing", "config", ("FM-22",),
          "--node's CNI conflist lost its portmap plugin and portmap's CNI-HOSTPORT-*/CNI-DN-* rules are gone: "
          "the hostPort there is refused", I.apply_portmap_missing, I.clear_portmap_missing,
          rules=("hostport.portmap",), node=HOSTPORT),
    Fault("hostport-on-hostnetwork", "config", ("FM-23",),
          "pod monitoring/metrics-agent-<node>, hostNetwork, declares hostPort 9100 on --node while its app "
          "listens on 9101: nothing maps the port", I.apply_hostport_on_hostnetwork, I.clear_process,
          rules=("hostport.hostnetwork",)),
    # -- host kernel ---------------------------------------------------------------------------------
    Fault("ip-forward-off", "config", ("FM-17",),
          "net.ipv4.ip_forward=0 on --node: it stops forwarding pod traffic", I.apply_ip_forward_off,
          I.clear_ip_forward_off, rules=("sysctl.ip-forward",)),
    Fault("bridge-nf-call-off", "config", ("FM-16",),
          "net.bridge.bridge-nf-call-iptables=0 on --node, set in its network namespace (per namespace on "
          "kernels >= 5.3, so the host keeps its own value); on older kernels, where the switch is global, only "
          "the node's host-root copy (<host-root>/proc/sys/...) is set, an emulation the host never feels",
          I.apply_bridge_nf_off, I.clear_bridge_nf_off, rules=("sysctl.bridge-nf-call-iptables",)),
    # -- DNS -----------------------------------------------------------------------------------------
    Fault("dns-upstream-down", "behaviour", ("FM-33",),
          "CoreDNS's queries to the upstream resolver (203.0.113.53:53) dropped on its node: cluster names "
          "resolve, external names time out", I.apply_dns_upstream_down, I.clear_dns_upstream_down, node=COREDNS),
    Fault("coredns-unreachable-from", "behaviour", ("FM-32", "FM-01"),
          "VXLAN from --node dropped at the node CoreDNS runs on: DNS fails from --node's pods only",
          I.apply_coredns_unreachable_from, node=NOT_COREDNS),
    Fault("coredns-loop", "behaviour", ("FM-29",),
          "CoreDNS's node runs systemd-resolved (resolv.conf -> stub 127.0.0.53) and CoreDNS forwards to its "
          "resolv.conf, i.e. to itself: the loop is detected, external names are refused",
          I.apply_coredns_loop, I.clear_coredns_loop, node=COREDNS),
    # -- kubelet -------------------------------------------------------------------------------------
    Fault("kubelet-port-closed", "behaviour", ("FM-34", "FM-36"),
          "TCP 10250 on --node dropped from the control plane: logs/exec and metrics scrapes time out, other "
          "nodes still reach it", I.apply_kubelet_port_closed, node=WORKER),
    Fault("kubelet-exposed", "behaviour", ("FM-39",),
          "TCP 10250 on --node opened to the internet in its security group", I.apply_kubelet_exposed),
)

_BY_NAME = {f.name: f for f in CATALOGUE}


def get(name: str) -> Fault:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UsageProblem(f"no fault {name!r} (`netdoctor lab faults` lists them)") from None


def active(lab: "Lab") -> list[dict[str, Any]]:
    """The records of the lab's active faults, oldest first."""
    return lab.faults()


def targets(fault: Fault, spec: S.LabSpec, node: str | None = None,
            peer: str | None = None) -> tuple[str | None, str | None]:
    """(node, peer) for `fault`: the given ones checked against what it allows, else its defaults."""
    chosen = _choose(fault, "node", fault.node, spec, node, None)
    return chosen, _choose(fault, "peer", fault.peer, spec, peer, chosen)


def _choose(fault: Fault, what: str, choice: Choice | None, spec: S.LabSpec, given: str | None,
            node: str | None) -> str | None:
    if choice is None:
        if given:
            raise UsageProblem(f"fault {fault.name} takes no --{what}")
        return None
    if given and given not in spec.node_names:
        raise UsageProblem(f"no node {given!r} in lab {spec.name!r} (nodes: {', '.join(spec.node_names)})")
    allowed = choice.allowed(spec, node)
    if given:
        if given not in allowed:
            listed = ", ".join(allowed) or "none here"
            raise UsageProblem(f"fault {fault.name}: --{what} must be {choice.why}: {listed}")
        return given
    if choice.optional:
        return None
    if not allowed:
        raise UsageProblem(f"fault {fault.name} needs {choice.why}, and lab {spec.name!r} has none")
    return allowed[0]


def apply(lab: "Lab", name: str, node: str | None = None, peer: str | None = None) -> dict[str, Any]:
    """Break the lab; returns the fault's record. Recorded before acting, undone if acting fails."""
    fault = get(name)
    if lab.state.status != "up":
        raise UsageProblem(f"lab {lab.name!r} is {lab.state.status}, not up")
    if any(r["name"] == name for r in lab.faults()):
        raise UsageProblem(f"fault {name} is already active in lab {lab.name!r}; clear it first")
    node, peer = targets(fault, lab.spec, node, peer)
    record: dict[str, Any] = {"name": name, "node": node, "peer": peer, "appliedAt": utcnow(),
                              "view": [], "iptables": [], "data": {}}
    lab.state.add_fault(record)
    try:
        fault.apply(lab, record)
        lab.state.add_fault(record)          # what apply filled in (edits, overrides, undo data)
        _resync(lab, record)
    except BaseException:
        try:
            _undo(lab, record, fault)
        except Exception:  # noqa: BLE001 - the first failure is the one to report
            pass
        raise
    return record


def clear(lab: "Lab", name: str | None = None) -> list[str]:
    """Undo one active fault (or all, newest first); returns the names cleared."""
    if name is not None:
        get(name)
    records = [r for r in lab.faults() if name is None or r["name"] == name]
    for record in reversed(records):
        # a record of a fault this version no longer knows still has its recomputed parts undone
        _undo(lab, record, _BY_NAME.get(record["name"]))
    return [r["name"] for r in records]


def _undo(lab: "Lab", record: dict[str, Any], fault: Fault | None) -> None:
    """The fault's own undo, then its record dropped and the recomputed parts reloaded without it."""
    try:
        if fault is not None:
            fault.clear(lab, record)
    finally:
        lab.state.drop_fault(record["name"])
        _resync(lab, record)


def _resync(lab: "Lab", record: dict[str, Any]) -> None:
    """Reload iptables where the record's edits apply; everywhere when it changed the view
    (kube-proxy and portmap rules follow the view)."""
    if record.get("view"):
        net.reconcile(lab)
    elif record.get("iptables"):
        net.reconcile(lab, sorted(net.touched_nodes(record)))
