"""The lab's Python API: `up`, `Lab.load`, `down`, and the handles faults and tests need.

    from k8snetdoctor.lab.lab import up, Lab
    lab = up("demo", nodes=3)          # builds; on failure removes what it built and re-raises
    lab.exec("echo-node-1", ["ip", "route"])
    lab.view()                         # the ClusterView consistent with the dataplane
    Lab.load("demo").down()            # works from the state file, even after a crashed up

A fault is meant to be a pair of small functions `apply(lab)` / `clear(lab)` acting on one or
two namespaces: a DROP in a node's LAB-SG chain (`sg.rule_drop_from` + `netns.iptables`), a
peer's route/neighbour/FDB removed and re-added (flannel.peer_*_lines + `netns.ip_batch`),
kube-proxy rules from a stale view (`lab.sync_kube_proxy(node, view)`, undone by calling it
without a view), a sysctl (`netns.sysctl`), a process stopped and started again
(`lab.stop_process` / `lab.start_process`), or a file removed from `lab.host_root(node)`.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Iterable, Sequence

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.lab import build, faults_view, hostroot, kubeproxy_rules, netns, procs
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.names import Names, validate
from k8snetdoctor.lab.rules import Ruleset
from k8snetdoctor.lab.state import LabState, ProcRecord, list_labs
from k8snetdoctor.lab.view import cluster_view

__all__ = ["Lab", "up", "down", "list_labs", "unrecorded_namespaces"]


class Lab:
    """A lab that exists on this host, described by its state file."""

    def __init__(self, state: LabState):
        self.state = state
        self.names = Names(state.name)
        self.spec = S.make(state.name, state.nodes)

    @property
    def name(self) -> str:
        return self.state.name

    @classmethod
    def load(cls, name: str) -> "Lab":
        return cls(LabState.load(validate(name)))

    # -- lifecycle -------------------------------------------------------------------------
    def down(self) -> dict[str, Any]:
        """Remove exactly what this lab's state file records; running it twice is harmless."""
        return build.teardown(self.state)

    def status(self) -> dict[str, Any]:
        present = netns.list_netns()
        procs_ = [{"name": r.name, "role": r.role, "pid": r.pid, "ns": r.ns, "alive": procs.alive(r)}
                  for r in self.state.processes]
        missing = [n for n in self.state.namespaces if n not in present]
        healthy = self.state.status == "up" and not missing and all(p["alive"] for p in procs_)
        return {
            "name": self.name, "state": self.state.status, "healthy": healthy, "error": self.state.error,
            "warnings": list(self.state.warnings),
            "namespaces": len(self.state.namespaces), "missingNamespaces": missing,
            "nodes": [{"name": n.name, "role": "control-plane" if n.control_plane else "worker", "ip": n.ip,
                       "podCIDR": n.pod_cidr, "vtepMAC": n.vtep_mac, "netns": self.node_ns(n.name),
                       "hostRoot": str(self.host_root(n.name))} for n in self.spec.nodes],
            "pods": [{"name": f"{p.namespace}/{p.name}", "node": p.node, "ip": p.ip, "netns": self.pod_ns(p.name)}
                     for p in self.spec.pods],
            "external": {"netns": self.names.external, "ip": S.EXTERNAL_IP, "dns": S.UPSTREAM_DNS_IP},
            "processes": procs_,
            "faults": [{k: f.get(k) for k in ("name", "node", "peer", "appliedAt")} for f in self.faults()],
            "stateFile": str(self.names.state_file),
        }

    # -- views and names -------------------------------------------------------------------
    def view(self, without_faults: Iterable[str] = ()) -> ClusterView:
        """A fresh copy each call, so a caller may edit it (e.g. into a stale view) freely.

        Active faults that change what the API says (lab/faults.py) are replayed over it, as
        the state file records them now; `without_faults` leaves some out (what a node whose
        kube-proxy stopped before that fault still believes).
        """
        skip = set(without_faults)
        overrides = [o for f in self.state.reload_faults() if f.get("name") not in skip for o in f.get("view") or []]
        return faults_view.apply(cluster_view(self.spec), overrides)

    def faults(self) -> list[dict[str, Any]]:
        """The active faults' records (lab/faults.py), re-read from the state file."""
        return self.state.reload_faults()

    def node_ns(self, node: str) -> str:
        return self.names.node(self.spec.node(node).name)

    def pod_ns(self, pod: str) -> str:
        """The namespace of pod `name` or `namespace/name`."""
        return self.names.pod(self.spec.pod(pod).name)

    def host_root(self, node: str) -> Path:
        return self.names.host_root(self.spec.node(node).name)

    def pod_resolv_path(self, pod: str) -> Path:
        p = self.spec.pod(pod)
        return hostroot.pod_resolv_path(self.host_root(p.node), p)

    @property
    def external_ns(self) -> str:
        return self.names.external

    def node_ip(self, node: str) -> str:
        return self.spec.node(node).ip

    def resolve_ns(self, target: str) -> str:
        """A namespace from a full netns name, a node, a pod, or lan/router/external."""
        if target in self.state.namespaces:
            return target
        for attempt in (self.node_ns, self.pod_ns):
            try:
                return attempt(target)
            except KeyError:
                pass
        if target in ("lan", "router", "external"):
            return self.names.ns(target)
        raise KeyError(f"{target!r} is not a namespace, node or pod of lab {self.name!r}")

    def process(self, name: str) -> ProcRecord:
        for r in self.state.processes:
            if r.name == name:
                return r
        raise KeyError(f"no process {name!r} in lab {self.name!r}")

    # -- acting on it ----------------------------------------------------------------------
    def exec(self, ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 30,
             input: str | None = None) -> subprocess.CompletedProcess:
        """Run argv in a lab namespace (given by netns, node or pod name); returns the result."""
        return netns.run(argv, ns=self.resolve_ns(ns), check=check, timeout=timeout, input=input)

    def node_ruleset(self, node: str, view: ClusterView | None = None) -> Ruleset:
        """The rules `up` loaded on `node`, or the ones a stale/edited `view` would give."""
        return build.node_ruleset(view or self.view(), self.spec, node)

    def sync_kube_proxy(self, node: str, view: ClusterView | None = None) -> None:
        """Redo only kube-proxy's part of `node`'s rules from `view` (default: the lab's own).

        What the node has now is read back first, so changes other owners made (a fault's
        DROP in LAB-SG, say) survive; a stale view gives a node whose kube-proxy lags behind.
        """
        ns = self.node_ns(node)
        current = Ruleset.parse(netns.iptables_save(ns))
        new = kubeproxy_rules.ruleset(view or self.view(), node)
        netns.iptables_restore(ns, current.replace_owned(kubeproxy_rules.owns, new).render())

    def stop_process(self, name: str) -> None:
        """Stop one recorded process (a kubelet, CoreDNS, an echo pod); the record stays for start."""
        procs.stop([self.process(name)])

    def start_process(self, name: str, timeout: float = 20) -> ProcRecord:
        """(Re)start a recorded process with its recorded argv, in its namespace."""
        old = self.process(name)
        procs.stop([old])
        self.state.drop_process(old.pid)
        rec = procs.start(self.state, old.ns, old.role, old.name, old.argv, old.ports, self.names.log_dir)
        procs.wait_ready([rec], timeout)
        return rec


def up(name: str = "default", nodes: int = 3, *, cleanup_on_error: bool = True, workers: int = 8) -> Lab:
    """Build a lab; refuses if one of that name exists. On failure it tears down what it made."""
    validate(name)
    lab_spec = S.make(name, nodes)
    if os.geteuid() != 0:
        raise netns.LabError("the lab needs root: it creates network namespaces and iptables rules")
    path = Names(name).state_file
    path.parent.mkdir(parents=True, exist_ok=True)
    try:   # O_EXCL: of two `up`s racing for one name, exactly one gets to build
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise netns.LabError(f"a lab named {name!r} already exists ({path}); bring it down first") from None
    state = LabState(name=name, nodes=nodes)
    state.save()
    try:
        build.build(lab_spec, state, workers=workers)
    except BaseException as exc:
        state.set_status("failed", f"{type(exc).__name__}: {exc}")
        if cleanup_on_error:
            build.teardown(state)
        raise
    return Lab(state)


def down(name: str) -> dict[str, Any]:
    """Tear down lab `name` from its state file (no-op result when there is none)."""
    validate(name)
    if not LabState.exists(name):
        return {"name": name, "processesStopped": 0, "namespacesDeleted": 0, "namespacesLeft": [],
                "processesStuck": [], "unrecordedProcesses": {}, "note": "no such lab"}
    return Lab.load(name).down()


def unrecorded_namespaces(name: str) -> list[str]:
    """Namespaces carrying lab `name`'s prefix that its state file does not list.

    `down` never deletes these (it removes only what it recorded); a person can, after looking.
    """
    names = Names(validate(name))
    recorded = set(LabState.load(name).namespaces) if LabState.exists(name) else set()
    return sorted(n for n in netns.list_netns() if names.owns(n) and n not in recorded)
