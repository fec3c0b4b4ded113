"""Active-test evidence built by hand in the shape probes/active/collate.py writes.

Tests state the entries that matter (from, to, result); the helpers fill in the rest and group
entries into one evidence item per vantage and kind, as the probe does.
"""
from __future__ import annotations

from typing import Any, Iterable

from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.model import Evidence, Finding, Scope
from k8snetdoctor.probes.active.model import expectation_met

NODES = ("node-0", "node-1", "node-2")
NODE_IP = {"node-0": "172.30.0.10", "node-1": "172.30.0.11", "node-2": "172.30.0.12"}


def entry(category: str, method: str, frm: str, to: str, to_node: str | None, result: str, *,
          expect: str = "reachable", host: str | None = None, port: int | None = None, **extra: Any) -> dict[str, Any]:
    e = {"test": f"{category}:{frm}->{to}", "category": category, "method": method, "from": frm, "to": to,
         "toNode": to_node, "host": host or NODE_IP.get(to_node or "", "10.244.9.9"), "port": port,
         "proto": "udp" if method in ("vxlan", "dns") else "tcp", "expect": expect, "result": result,
         "ok": expectation_met(expect, result), "latencyMs": 1.0, "detail": ""}
    e.update(extra)
    return e


def vxlan(frm: str, to: str, result: str = "reply") -> dict[str, Any]:
    return entry("vxlan", "vxlan", f"node/{frm}", to, to, result, port=8472)


def conn(category: str, frm: str, to_node: str, result: str = "ok", method: str = "http", **kw: Any) -> dict[str, Any]:
    return entry(category, method, frm, kw.pop("to", f"default/echo-{to_node}"), to_node, result, **kw)


def dns(frm: str, qname: str, result: str = "answer", *, category: str = "dns-cluster-ip", server: str = "10.96.0.10",
        to_node: str | None = None, server_class: str = "cluster-dns", **kw: Any) -> dict[str, Any]:
    expect = kw.pop("expect", "answer")
    return entry(category, "dns", frm, qname, to_node, result, expect=expect, host=server, port=53, qname=qname,
                 server=server, serverClass=server_class, rcode=kw.pop("rcode", None), answers=[], **kw)


def evidence(kind: str, entries: Iterable[dict[str, Any]]) -> list[Evidence]:
    """One Evidence per vantage (entry["from"]), as collate.evidence groups them."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault(e["from"], []).append(e)
    out = []
    for vid, es in groups.items():
        vkind, _, node = vid.partition("/")
        data = {"vantage": {"id": vid, "kind": vkind, "node": node or None, "name": node or vid, "ip": None,
                            "where": "fixture"}, "results": es}
        out.append(Evidence(kind=kind, node=node or None, vantage=vkind, source=f"netdoctor active {kind} from {vid}",
                            data=data, excerpt=f"{len(es)} entries"))
    return out


def mesh(category: str, vantage: str = "pod", nodes: Iterable[str] = NODES, broken: Iterable[tuple[str, str]] = (),
         method: str = "http") -> list[dict[str, Any]]:
    """Every (from, to) node pair of one category, timing out on the `broken` ones."""
    bad = set(broken)
    ns = list(nodes)
    return [conn(category, f"{vantage}/{a}", b, "timeout" if (a, b) in bad else "ok", method=method)
            for a in ns for b in ns]


def symptom(rule_id: str, status: str = "fail", **details: Any) -> Finding:
    """A finding of `rule_id` with the details correlation matches on (and the scope its rule would give)."""
    pairs = [[details["from"], details["to"]]] if "from" in details and "to" in details else []
    nodes = [details["node"]] if "node" in details else list(details.pop("nodes", []))
    return Finding(id=rule_id, check=rule_id.split(".")[0], title="t", status=status, severity="high", message="m",
                   scope=Scope(nodes=nodes, nodePairs=pairs), details=details)


def nodeport_view(endpoint_node: str = "node-2") -> ClusterView:
    """default/echo-nodeport (NodePort 30080) with its one endpoint on `endpoint_node`."""
    svc = {"kind": "Service", "metadata": {"name": "echo-nodeport", "namespace": "default"},
           "spec": {"type": "NodePort", "clusterIP": "10.96.100.20",
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}}
    es = {"kind": "EndpointSlice", "metadata": {"name": "echo-nodeport-x", "namespace": "default",
                                                "labels": {"kubernetes.io/service-name": "echo-nodeport"}},
          "ports": [{"name": "http", "port": 8080}],
          "endpoints": [{"addresses": ["10.244.2.3"], "nodeName": endpoint_node, "conditions": {"ready": True}}]}
    return ClusterView.from_objects([svc, es], source="fixture")
