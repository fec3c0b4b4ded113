"""Who this evidence is about: node name, host name, kernel, and where host files were read.

Every other item carries the node name; this one ties it to the machine that answered, so a
bundle from a DaemonSet pod scheduled on the wrong node, or a node whose hostname differs
from its Kubernetes name (a common cause of mismatched evidence), is visible in the report.
"""
from __future__ import annotations

import os
import socket

from k8snetdoctor.model import Evidence

from ._common import evidence, host_path

KIND = "host"


def read_hostname(host_root: str = "/") -> str:
    """The node's hostname: <host_root>/etc/hostname when present (a container's own hostname is
    the pod's unless hostNetwork), else this kernel's UTS name."""
    if host_root.rstrip("/"):
        try:
            name = host_path(host_root, "/etc/hostname").read_text().strip()
            if name:
                return name
        except Exception:
            pass
    return socket.gethostname()


def collect_host(node: str | None, host_root: str = "/", netns: str | None = None) -> list[Evidence]:
    hostname = read_hostname(host_root)
    kernel = os.uname().release
    data = {"hostname": hostname, "kernel": kernel, "nodeName": node, "hostRoot": host_root}
    if netns:  # the lab: the node is a network namespace on a shared kernel
        data["netns"] = netns
    excerpt = f"hostname {hostname}\nkernel {kernel}\nnode {node}\nhost root {host_root}" + (
        f"\nnetns {netns}" if netns else "")
    return [evidence(KIND, node, "uname -r; hostname", data=data, excerpt=excerpt)]
