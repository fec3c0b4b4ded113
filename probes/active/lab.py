"""Active tests against a netns lab: the lab's vantages mapped to its namespaces, then plan + run.

    from k8snetdoctor.lab.lab import Lab
    from k8snetdoctor.probes.active.lab import probe_lab
    evidence = probe_lab(Lab.load("demo"), deadline_s=20)

Vantages: each node's namespace (the host network), the toolbox pod on each node (the pod
network: a DaemonSet-like pod the lab puts on every node), and the lab's `external` namespace
(the internet side). resolv.conf files come from the lab's host roots, where kubelet and
containerd would keep them, because `ip netns exec` bind mounts do not apply to threads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, TypeVar

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Evidence

from .context import RunConfig
from .model import Test, Vantage
from .plan import build_plan
from .run import Progress, _read, run_tests
from .targets import PlanConfig, vantages_for

if TYPE_CHECKING:  # pragma: no cover
    from k8snetdoctor.lab.lab import Lab

T = TypeVar("T")
TOOLBOX = {"app": "toolbox"}     # the lab's pod on every node (a pod-vantage DaemonSet stand-in)


def lab_vantages(lab: "Lab", view: ClusterView | None = None) -> list[Vantage]:
    from k8snetdoctor.lab import spec as S

    return vantages_for(view or lab.view(), TOOLBOX, external_ip=S.EXTERNAL_IP)


def lab_plan_config(**overrides) -> PlanConfig:
    """The planner's defaults with the MTUs the lab builds (underlay 1500, flannel.1 1450)."""
    from k8snetdoctor.lab import spec as S

    base = {"underlay_mtu": S.UNDERLAY_MTU, "pod_mtu": S.VXLAN_MTU, "vxlan_port": S.VXLAN_PORT,
            "echo_port": S.ECHO_PORT, "kubelet_port": S.KUBELET_PORT, "cluster_domain": S.CLUSTER_DOMAIN}
    base.update(overrides)
    return PlanConfig(**base)


class LabExecutor:
    """Vantage -> lab namespace; code runs on a fresh thread that joined it (lab.netns.in_netns)."""

    def __init__(self, lab: "Lab"):
        self.lab = lab

    def ns(self, v: Vantage) -> str:
        if v.kind == "external":
            return self.lab.external_ns
        if v.kind == "pod":
            return self.lab.pod_ns(v.name.split("/", 1)[-1])
        return self.lab.node_ns(v.node or "")

    def call(self, vantage: Vantage, fn: Callable[[], T], timeout: float) -> T:
        from k8snetdoctor.lab.netns import in_netns

        return in_netns(self.ns(vantage), fn, timeout=timeout)

    def resolv_conf(self, vantage: Vantage) -> tuple[str, str] | None:
        if vantage.kind == "pod":
            return _read(self.lab.pod_resolv_path(vantage.name.split("/", 1)[-1]))
        if vantage.kind == "node" and vantage.node:
            return self.node_resolv_conf(vantage.node)
        return None

    def node_resolv_conf(self, node: str) -> tuple[str, str] | None:
        return _read(self.lab.host_root(node) / "etc/resolv.conf")

    def where(self, vantage: Vantage) -> str:
        return f"netns {self.ns(vantage)}"


def probe_lab(lab: "Lab", deadline_s: float = 30.0, *, config: PlanConfig | None = None,
              run_config: RunConfig | None = None, select: Callable[[Test], bool] | None = None,
              progress: Progress | None = None) -> list[Evidence]:
    """Plan from the lab's ClusterView and run from its namespaces; `select` keeps a subset of tests."""
    view = lab.view()
    plan = build_plan(view, lab_vantages(lab, view), config or lab_plan_config())
    tests = [t for t in plan.tests if select is None or select(t)]
    return run_tests(tests, LabExecutor(lab), deadline_s, config=run_config, progress=progress, plan=plan)
