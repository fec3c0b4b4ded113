"""The kube-proxy 1.26 capture replayed scenario by scenario, for the kubeproxy and nodeport tests.

The dumps are cumulative while fx-objects.json is the final state, so a dump taken at
scenario N is judged against the Services that existed then (`view_at(N)`).
"""
from __future__ import annotations

import json

from support import FIXTURES, KP126, iptables_ev
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Evidence

# scenario number -> Service created then (README "Services" table)
CREATED = {2: "web-clusterip", 3: "web-nodeport", 4: "web-local", 5: "no-backend", 6: "sticky", 7: "multi",
           8: "dns-like", 10: "late-nodeport"}
SCENARIO = {"baseline": 1, "clusterip": 2, "nodeport": 3, "nodeport-etp-local": 4, "no-endpoints": 5,
            "session-affinity": 6, "multi-port": 7, "udp-dns-like": 8, "nodeport-addresses": 9,
            "kube-proxy-stopped": 10}
SAMPLES = FIXTURES / "iptables"


def fx_objects() -> dict:
    return json.loads((KP126 / "fx-objects.json").read_text())


def view_at(scenario: int, *extra: dict, edit=None) -> ClusterView:
    """The cluster as it was at `scenario`; `edit(items)` may change the fx objects first."""
    names = {svc for n, svc in CREATED.items() if n <= scenario}
    fx = fx_objects()
    items = [o for o in fx["items"] if (o["metadata"]["name"] if o["kind"] == "Service"
                                        else o["metadata"]["labels"]["kubernetes.io/service-name"]) in names]
    if edit:
        edit(items)
    nodes = json.loads((KP126 / "nodes.json").read_text())
    return ClusterView.from_objects([nodes, {**fx, "items": items}, *extra], source="fixture")


def dump_ev(name: str, node: str, backend: str = "nft") -> Evidence:
    """iptables-save evidence from `<name>.<node>.iptables-save.txt` of the 1.26 capture."""
    return iptables_ev(node, KP126 / f"{name}.{node}.iptables-save.txt", backend)


def sample_ev(file: str, node: str, backend: str = "nft") -> Evidence:
    return iptables_ev(node, SAMPLES / file, backend)


def configmap(conf: str) -> dict:
    return {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system"}, "data": {"config.conf": conf}}


def b6_configmap() -> dict:
    """failure-modes.md B6-1: kubeadm's ConfigMap with mode "" and nodePortAddresses null."""
    return configmap((FIXTURES / "kube-proxy-config" / "b6-1.config.conf").read_text())


def slice_of(items: list[dict], service: str) -> dict:
    return next(o for o in items if o["kind"] == "EndpointSlice"
                and o["metadata"]["labels"]["kubernetes.io/service-name"] == service)
