"""Files a node's probe reads from the host: CNI config and binaries, resolv.conf, kubelet config.

Each lab node gets a directory standing for its root filesystem (`lab.host_root(node)`), so
`probe collect --host-root` reads the same paths it would read under /host on a real node,
and a fault like "portmap missing" is a file removed from here.
"""
from __future__ import annotations

import json
from pathlib import Path

from k8snetdoctor.lab import dns
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.flannel import subnet_env

CNI_BINARIES = ("bridge", "flannel", "portmap", "host-local", "loopback")
CONFLIST = "etc/cni/net.d/10-flannel.conflist"
SANDBOXES = "var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes"


def flannel_conflist() -> str:
    """The conflist kube-flannel.yml installs: flannel (delegating to bridge) + portmap."""
    return json.dumps({
        "name": S.CNI_NETWORK,
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2) + "\n"


KUBELET_CONFIG = f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
clusterDNS:
- {S.KUBE_DNS_IP}
clusterDomain: {S.CLUSTER_DOMAIN}
port: {S.KUBELET_PORT}
resolvConf: /etc/resolv.conf
"""


def pod_resolv_path(root: Path, pod: S.PodSpec) -> Path:
    """Where containerd keeps the resolv.conf kubelet gave the pod sandbox."""
    return root / SANDBOXES / pod.sandbox_id / "resolv.conf"


def pod_resolv(pod: S.PodSpec) -> str:
    return dns.node_resolv_conf() if pod.kind == "dns" else dns.pod_resolv_conf(pod.namespace)


def write(root: Path, node: S.NodeSpec, lab: S.LabSpec) -> None:
    files = {
        CONFLIST: flannel_conflist(),
        "etc/resolv.conf": dns.node_resolv_conf(),
        "etc/hostname": node.name + "\n",
        "run/flannel/subnet.env": subnet_env(node),
        "var/lib/kubelet/config.yaml": KUBELET_CONFIG,
    }
    files.update({f"opt/cni/bin/{b}": "" for b in CNI_BINARIES})
    for rel, text in files.items():
        _put(root / rel, text)
    for b in CNI_BINARIES:
        (root / "opt/cni/bin" / b).chmod(0o755)
    for pod in lab.pods_on(node.name):
        _put(pod_resolv_path(root, pod), pod_resolv(pod))


def _put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
