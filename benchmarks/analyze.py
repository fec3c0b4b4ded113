"""How long judging takes on large clusters, and how much memory it needs.

Synthesises a cluster of N nodes and S NodePort Services (3 endpoints each), renders each
node's kube-proxy 1.26 rules with the lab's generator (the same format as the real captures),
then times `engine.analyze` with every rule (best of 3) and reports the process's peak RSS.
No root needed; prints figures, asserts nothing.

    python benchmarks/analyze.py            # default sizes
    python benchmarks/analyze.py 20:2000    # nodes:services
"""
from __future__ import annotations

import resource
import sys
import time

from k8snetdoctor import engine, iptables, registry
from k8snetdoctor.cluster.view import ClusterView
from k8snetdoctor.lab import kubeproxy_rules
from k8snetdoctor.model import Evidence, EvidenceBundle


def synthetic_view(nodes: int, services: int) -> ClusterView:
    objs: list[dict] = []
    names = [f"node-{i}" for i in range(nodes)]
    for i, n in enumerate(names):
        objs.append({"kind": "Node", "metadata": {"name": n, "annotations": {}},
                     "spec": {"podCIDR": f"10.{64 + i // 256}.{i % 256}.0/24"},
                     "status": {"addresses": [{"type": "InternalIP", "address": f"172.30.{i // 250}.{10 + i % 250}"}],
                                "conditions": [{"type": "Ready", "status": "True"}]}})
    for s in range(services):
        name = f"svc-{s}"
        objs.append({"kind": "Service", "metadata": {"name": name, "namespace": "bench"},
                     "spec": {"type": "NodePort", "clusterIP": f"10.96.{s // 250}.{1 + s % 250}",
                              "externalTrafficPolicy": "Cluster",
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080,
                                         "nodePort": 30000 + s % 2768}]}})
        eps = []
        for k in range(3):
            node = (s + k) % nodes
            eps.append({"addresses": [f"10.{64 + node // 256}.{node % 256}.{2 + (s * 3 + k) % 250}"],
                        "nodeName": names[node], "conditions": {"ready": True}})
        objs.append({"kind": "EndpointSlice", "metadata": {"name": f"{name}-x", "namespace": "bench",
                                                          "labels": {"kubernetes.io/service-name": name}},
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": eps})
    return ClusterView.from_objects(objs, source="synthetic")


def bundle_for(view: ClusterView) -> EvidenceBundle:
    items = []
    for n in view.node_names():
        text = kubeproxy_rules.render(view, n)
        kube = sum(1 for line in text.splitlines() if line.startswith("-A KUBE-"))
        items.append(Evidence(kind="iptables-save", node=n, source="iptables-nft-save",
                              data={"backend": "nft", "text": text, "kubeRules": kube}, excerpt=text[:2000]))
        items.append(Evidence(kind="iptables-save", node=n, source="iptables-legacy-save",
                              data={"backend": "legacy", "text": "", "kubeRules": 0}))
        items.append(Evidence(kind="sysctls", node=n, source="/proc/sys",
                              data={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}))
    return EvidenceBundle(evidence=items, cluster=view.to_dict())


def measure(nodes: int, services: int) -> None:
    view = synthetic_view(nodes, services)
    t0 = time.perf_counter()
    bundle = bundle_for(view)
    gen = time.perf_counter() - t0
    rules_per_node = bundle.evidence[0].data["kubeRules"]
    took = []
    for _ in range(3):
        iptables.parse.cache_clear()  # cold each time: a real run parses every dump once
        t0 = time.perf_counter()
        report = engine.analyze(bundle, registry.all_rules())
        took.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = report.summary()
    print(f"{nodes:>4} nodes {services:>5} NodePort services ({rules_per_node:>6} KUBE rules/node): "
          f"analyze {min(took):6.2f} s (best of 3), process peak RSS {peak:6.0f} MiB  "
          f"[{s['pass']} pass {s['fail']} fail {s['skip']} skip; generating dumps took {gen:.2f} s]")


def main(argv: list[str]) -> None:
    sizes = [tuple(int(x) for x in a.split(":")) for a in argv] or [(3, 50), (10, 500), (50, 200), (20, 2000)]
    for nodes, services in sizes:
        measure(nodes, services)


if __name__ == "__main__":
    main(sys.argv[1:])
