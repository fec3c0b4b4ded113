"""The lab's topology, declared once and derived from (lab name, node count) alone.

Everything else (the namespaces built, the iptables rules, the ClusterView) is computed from
this, so a lab can be rebuilt, inspected or torn down from two values in its state file,
and the view the engine judges always agrees with the dataplane that was built.
"""
from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass, field

CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
CLUSTER_DOMAIN = "cluster.local"
UNDERLAY_CIDR = "172.30.0.0/24"          # the VPC / home LAN
ROUTER_LAN_IP = "172.30.0.1"
EXTERNAL_CIDR = "203.0.113.0/24"         # documentation range: the internet side
ROUTER_EXT_IP = "203.0.113.1"
EXTERNAL_IP = "203.0.113.10"             # the admin's laptop
UPSTREAM_DNS_IP = "203.0.113.53"         # a public resolver
EXAMPLE_IP = "203.0.113.80"              # example.com, with a web server
KUBE_DNS_IP = "10.96.0.10"
KUBERNETES_SVC_IP = "10.96.0.1"
UNDERLAY_MTU = 1500
VXLAN_MTU = 1450
VXLAN_VNI = 1
VXLAN_PORT = 8472
ECHO_PORT = 8080
HOST_PORT = 8081
KUBELET_PORT = 10250
APISERVER_PORT = 6443
NODEPORT_CLUSTER = 30080
NODEPORT_LOCAL = 30081
CNI_NETWORK = "cbr0"                     # the network name in flannel's conflist
MAX_NODES = 200
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
UID_NS = uuid.UUID("6f1d2c1e-8a52-4c38-9a0b-6e6c2b1b7a10")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    index: int
    ip: str
    pod_cidr: str
    control_plane: bool
    vtep_mac: str

    @property
    def vtep_ip(self) -> str:
        """flannel.1's address: the podCIDR's network address, as flanneld assigns it."""
        return str(ipaddress.ip_network(self.pod_cidr).network_address)

    @property
    def gateway(self) -> str:
        """cni0's address: the first host of the podCIDR, pods' default gateway."""
        return str(ipaddress.ip_network(self.pod_cidr).network_address + 1)

    @property
    def taints(self) -> list[dict[str, str]]:
        return [dict(CP_TAINT)] if self.control_plane else []


@dataclass(frozen=True)
class PodSpec:
    namespace: str
    name: str
    node: str
    ip: str
    kind: str                      # echo | dns | toolbox
    labels: dict[str, str] = field(default_factory=dict)
    container_port: int | None = None
    host_port: int | None = None
    owner: str | None = None       # the controller kind/name it belongs to

    @property
    def uid(self) -> str:
        return str(uuid.uuid5(UID_NS, f"{self.namespace}/{self.name}"))

    @property
    def sandbox_id(self) -> str:
        """The CNI container id (the pod sandbox); portmap hashes it into CNI-DN-* names."""
        return hashlib.sha256(self.uid.encode()).hexdigest()


@dataclass(frozen=True)
class PortSpec:
    name: str
    protocol: str
    port: int
    target_port: int
    node_port: int | None = None


@dataclass(frozen=True)
class ServiceSpec:
    namespace: str
    name: str
    cluster_ip: str
    ports: tuple[PortSpec, ...]
    selector: dict[str, str] | None = None
    type: str = "ClusterIP"
    external_traffic_policy: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LabSpec:
    name: str
    nodes: tuple[NodeSpec, ...]
    pods: tuple[PodSpec, ...]
    services: tuple[ServiceSpec, ...]

    # -- lookups -----------------------------------------------------------------------------
    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in lab {self.name!r} (nodes: {', '.join(self.node_names)})")

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def control_plane(self) -> NodeSpec:
        return self.nodes[0]

    @property
    def workers(self) -> list[NodeSpec]:
        return [n for n in self.nodes if not n.control_plane]

    def pod(self, name: str) -> PodSpec:
        """A pod by `name` or `namespace/name`."""
        for p in self.pods:
            if name in (p.name, f"{p.namespace}/{p.name}"):
                return p
        raise KeyError(f"no pod {name!r} in lab {self.name!r}")

    def pods_on(self, node: str) -> list[PodSpec]:
        return [p for p in self.pods if p.node == node]

    def selected(self, svc: ServiceSpec) -> list[PodSpec]:
        if not svc.selector:
            return []
        return [p for p in self.pods if p.namespace == svc.namespace
                and all(p.labels.get(k) == v for k, v in svc.selector.items())]


def vtep_mac(lab: str, node: str) -> str:
    """A stable, locally administered unicast MAC, so the view can state it before building."""
    b = bytearray(hashlib.sha256(f"{lab}/{node}/flannel.1".encode()).digest()[:6])
    b[0] = (b[0] & 0xFC) | 0x02
    return ":".join(f"{x:02x}" for x in b)


def make(name: str, nodes: int = 3) -> LabSpec:
    """The standard lab: node-0 the control plane, the rest workers, one echo pod per worker."""
    if not 2 <= nodes <= MAX_NODES:
        raise ValueError(f"nodes must be between 2 and {MAX_NODES}, got {nodes}")
    lan = ipaddress.ip_network(UNDERLAY_CIDR)
    node_specs = tuple(
        NodeSpec(name=f"node-{i}", index=i, ip=str(lan.network_address + 10 + i),
                 pod_cidr=f"10.244.{i}.0/24", control_plane=(i == 0), vtep_mac=vtep_mac(name, f"node-{i}"))
        for i in range(nodes))
    workers = [n for n in node_specs if not n.control_plane]
    first, last = workers[0], workers[-1]

    pods: list[PodSpec] = []
    next_host = {n.name: 2 for n in node_specs}

    def add(node: NodeSpec, **kw) -> None:
        ip = str(ipaddress.ip_network(node.pod_cidr).network_address + next_host[node.name])
        next_host[node.name] += 1
        pods.append(PodSpec(node=node.name, ip=ip, **kw))

    for n in node_specs:
        # A pod on every node (tolerating the control-plane taint), to test from a pod's vantage.
        add(n, namespace="default", name=f"toolbox-{n.name}", kind="toolbox",
            labels={"app": "toolbox"}, owner="DaemonSet/toolbox")
    for n in workers:
        add(n, namespace="default", name=f"echo-{n.name}", kind="echo", labels={"app": "echo"},
            container_port=ECHO_PORT, owner="ReplicaSet/echo")
    add(last, namespace="kube-system", name="coredns-0", kind="dns", labels={"k8s-app": "kube-dns"},
        container_port=53, owner="ReplicaSet/coredns")
    add(first, namespace="default", name="echo-hostport", kind="echo", labels={"app": "echo-hostport"},
        container_port=ECHO_PORT, host_port=HOST_PORT, owner="ReplicaSet/echo-hostport")

    http = PortSpec("http", "TCP", 80, ECHO_PORT)
    services = (
        ServiceSpec("default", "kubernetes", KUBERNETES_SVC_IP, (PortSpec("https", "TCP", 443, APISERVER_PORT),),
                    labels={"component": "apiserver", "provider": "kubernetes"}),
        ServiceSpec("kube-system", "kube-dns", KUBE_DNS_IP,
                    (PortSpec("dns", "UDP", 53, 53), PortSpec("dns-tcp", "TCP", 53, 53)),
                    selector={"k8s-app": "kube-dns"}, labels={"k8s-app": "kube-dns"}),
        ServiceSpec("default", "echo", "10.96.100.10", (http,), selector={"app": "echo"}),
        ServiceSpec("default", "echo-nodeport", "10.96.100.20",
                    (PortSpec("http", "TCP", 80, ECHO_PORT, NODEPORT_CLUSTER),), selector={"app": "echo"},
                    type="NodePort", external_traffic_policy="Cluster"),
        ServiceSpec("default", "echo-local", "10.96.100.30",
                    (PortSpec("http", "TCP", 80, ECHO_PORT, NODEPORT_LOCAL),), selector={"app": "echo-hostport"},
                    type="NodePort", external_traffic_policy="Local"),
    )
    return LabSpec(name=name, nodes=node_specs, pods=tuple(pods), services=services)
