"""The lab's ClusterView: API-shaped objects that agree with the dataplane the lab builds.

Built from the spec alone (the VTEP MACs are fixed there and set on flannel.1), so the view
stays what the "API server" believes even after a fault changes the dataplane underneath —
which is exactly the disagreement the rules are there to notice.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from k8snetdoctor.cluster.view import FLANNEL, ClusterView
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.hostroot import flannel_conflist

K8S_VERSION = "v1.26.15"
CREATED = "2026-01-01T00:00:00Z"
_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


def cluster_view(lab: S.LabSpec) -> ClusterView:
    objs: list[dict[str, Any]] = []
    objs += [_node(n) for n in lab.nodes]
    objs += [_pod(p, lab) for p in lab.pods]
    objs += [_host_pod(n, ds) for ds in ("kube-proxy", "kube-flannel-ds") for n in lab.nodes]
    objs += [_service(s) for s in lab.services]
    objs += [_slice(s, lab) for s in lab.services]
    objs += _config_maps()
    objs += _daemon_sets(len(lab.nodes))
    return ClusterView.from_objects(objs, source=f"lab:{lab.name}")


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "creationTimestamp": CREATED,
                         "uid": str(uuid.uuid5(S.UID_NS, f"{namespace}/{name}"))}
    if namespace:
        m["namespace"] = namespace
    m.update({k: v for k, v in extra.items() if v is not None})
    return m


def _node(n: S.NodeSpec) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    if n.control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    annotations = {
        FLANNEL + "backend-data": json.dumps({"VNI": S.VXLAN_VNI, "VtepMAC": n.vtep_mac}, separators=(",", ":")),
        FLANNEL + "backend-type": "vxlan",
        FLANNEL + "kube-subnet-manager": "true",
        FLANNEL + "public-ip": n.ip,
        "node.alpha.kubernetes.io/ttl": "0",
    }
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": _meta(n.name, labels=labels, annotations=annotations),
        "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr], **({"taints": n.taints} if n.taints else {})},
        "status": {
            "addresses": [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}],
            "conditions": [
                {"type": "NetworkUnavailable", "status": "False", "reason": "FlannelIsUp",
                 "message": "Flannel is running on this node", "lastTransitionTime": CREATED},
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status", "lastTransitionTime": CREATED},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": S.KUBELET_PORT}},
            "nodeInfo": {"kubeletVersion": K8S_VERSION, "kubeProxyVersion": K8S_VERSION,
                         "containerRuntimeVersion": "containerd://1.7.13", "operatingSystem": "linux",
                         "architecture": "amd64", "osImage": "netdoctor lab (network namespace)"},
        },
    }


def _owner(kind_name: str | None) -> list[dict[str, Any]] | None:
    if not kind_name:
        return None
    kind, name = kind_name.split("/", 1)
    return [{"apiVersion": "apps/v1", "kind": kind, "name": name, "controller": True}]


def _ready_status(ip: str, host_ip: str) -> dict[str, Any]:
    return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host_ip,
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}


def _pod(p: S.PodSpec, lab: S.LabSpec) -> dict[str, Any]:
    container: dict[str, Any] = {"name": p.kind if p.kind != "dns" else "coredns",
                                 "image": {"echo": "netdoctor/echo", "dns": "registry.k8s.io/coredns/coredns:v1.9.3",
                                           "toolbox": "netdoctor/probe"}[p.kind]}
    if p.container_port:
        ports = [{"containerPort": p.container_port, "protocol": "TCP", "name": "http"}]
        if p.host_port:
            ports[0]["hostPort"] = p.host_port
        if p.kind == "dns":
            ports = [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                     {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}]
        container["ports"] = ports
    spec: dict[str, Any] = {"nodeName": p.node, "containers": [container],
                            "dnsPolicy": "Default" if p.kind == "dns" else "ClusterFirst"}
    if p.kind == "toolbox":
        spec["tolerations"] = [{"operator": "Exists"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": _meta(p.name, p.namespace, labels=dict(p.labels), ownerReferences=_owner(p.owner)),
            "spec": spec, "status": _ready_status(p.ip, lab.node(p.node).ip)}


def _host_pod(n: S.NodeSpec, ds: str) -> dict[str, Any]:
    """kube-proxy and flannel run as hostNetwork DaemonSet pods; no namespace is built for them."""
    ns = "kube-flannel" if ds.startswith("kube-flannel") else "kube-system"
    app = {"kube-proxy": {"k8s-app": "kube-proxy"}, "kube-flannel-ds": {"app": "flannel"}}[ds]
    image = {"kube-proxy": f"registry.k8s.io/kube-proxy:{K8S_VERSION}",
             "kube-flannel-ds": "docker.io/flannel/flannel:v0.24.2"}[ds]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": _meta(f"{ds}-{n.name}", ns, labels=app, ownerReferences=_owner(f"DaemonSet/{ds}")),
            "spec": {"nodeName": n.name, "hostNetwork": True, "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": ds.replace("-ds", ""), "image": image}]},
            "status": _ready_status(n.ip, n.ip)}


def _service(s: S.ServiceSpec) -> dict[str, Any]:
    ports = []
    for p in s.ports:
        port: dict[str, Any] = {"name": p.name, "protocol": p.protocol, "port": p.port, "targetPort": p.target_port}
        if p.node_port:
            port["nodePort"] = p.node_port
        ports.append(port)
    spec: dict[str, Any] = {"type": s.type, "clusterIP": s.cluster_ip, "clusterIPs": [s.cluster_ip],
                            "ports": ports, "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}
    if s.selector:
        spec["selector"] = dict(s.selector)
    if s.type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = s.external_traffic_policy or "Cluster"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(s.name, s.namespace, labels=dict(s.labels) or None), "spec": spec}


def _slice(s: S.ServiceSpec, lab: S.LabSpec) -> dict[str, Any]:
    if s.selector is None:  # default/kubernetes: the apiserver writes its own slice
        cp = lab.control_plane
        endpoints = [{"addresses": [cp.ip], "conditions": {"ready": True, "serving": True, "terminating": False}}]
        name, managed = s.name, "kube-apiserver"
    else:
        endpoints = [{"addresses": [p.ip], "conditions": {"ready": True, "serving": True, "terminating": False},
                      "nodeName": p.node, "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name,
                                                        "uid": p.uid}}
                     for p in lab.selected(s)]
        suffix = hashlib.sha256(f"{s.namespace}/{s.name}".encode()).hexdigest()[:5]
        name, managed = f"{s.name}-{suffix}", "endpointslice-controller.k8s.io"
    labels = {"kubernetes.io/service-name": s.name, _MANAGED_BY: managed}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": _meta(name, s.namespace, labels=labels),
            "ports": [{"name": p.name, "port": p.target_port, "protocol": p.protocol} for p in s.ports],
            "endpoints": endpoints}


KUBE_PROXY_CONF = f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clusterCIDR: {S.CLUSTER_CIDR}
iptables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 1s
  syncPeriod: 30s
mode: iptables
nodePortAddresses: null
"""

COREFILE = f""".:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {S.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30
    loop
    reload
    loadbalance
}}
"""

FLANNEL_NET_CONF = json.dumps({"Network": S.CLUSTER_CIDR, "Backend": {"Type": "vxlan"}}, indent=2)


def _config_maps() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("kube-proxy", "kube-system"),
         "data": {"config.conf": KUBE_PROXY_CONF}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("coredns", "kube-system"),
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("kube-flannel-cfg", "kube-flannel"),
         "data": {"net-conf.json": FLANNEL_NET_CONF, "cni-conf.json": flannel_conflist()}},
    ]


def _daemon_sets(n_nodes: int) -> list[dict[str, Any]]:
    def ds(name: str, ns: str, labels: dict[str, str], image: str, tolerate_all: bool) -> dict[str, Any]:
        tmpl_spec: dict[str, Any] = {"containers": [{"name": name.replace("-ds", ""), "image": image}]}
        if name != "toolbox":
            tmpl_spec["hostNetwork"] = True
        if tolerate_all:
            tmpl_spec["tolerations"] = [{"operator": "Exists"}]
        return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(name, ns, labels=labels),
                "spec": {"selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": tmpl_spec}},
                "status": {"desiredNumberScheduled": n_nodes, "currentNumberScheduled": n_nodes,
                           "numberReady": n_nodes, "numberAvailable": n_nodes}}

    return [
        ds("kube-proxy", "kube-system", {"k8s-app": "kube-proxy"}, f"registry.k8s.io/kube-proxy:{K8S_VERSION}", True),
        ds("kube-flannel-ds", "kube-flannel", {"app": "flannel"}, "docker.io/flannel/flannel:v0.24.2", True),
        ds("toolbox", "default", {"app": "toolbox"}, "netdoctor/probe", True),
    ]
