"""Cluster DNS for the lab: dnsmasq playing CoreDNS, and a public resolver outside.

CoreDNS is not packaged here; dnsmasq with flags only (no config file, no host resolv.conf)
answers the records the `kubernetes` plugin would serve and forwards the rest upstream, which
is the behaviour the DNS rules reason about. The cache is off so a fault on the upstream path
shows at once.
"""
from __future__ import annotations

from k8snetdoctor.lab import spec as S

_BASE = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
         "--bind-interfaces", "--port=53", "--pid-file=", "--cache-size=0", "--user=nobody",
         "--log-facility=-"]


def cluster_records(lab: S.LabSpec) -> list[tuple[str, str]]:
    """(name, IPv4) pairs: every Service's ClusterIP and every pod's dashed-IP name."""
    d = S.CLUSTER_DOMAIN
    recs = [(f"{s.name}.{s.namespace}.svc.{d}", s.cluster_ip) for s in lab.services]
    recs += [(f"{p.ip.replace('.', '-')}.{p.namespace}.pod.{d}", p.ip) for p in lab.pods]
    return recs


def coredns_argv(lab: S.LabSpec, pod: S.PodSpec, upstream: str = S.UPSTREAM_DNS_IP) -> list[str]:
    d = S.CLUSTER_DOMAIN
    argv = _BASE + [f"--listen-address={pod.ip}", f"--local=/{d}/", f"--server={upstream}"]
    argv += [f"--host-record={name},{ip}" for name, ip in cluster_records(lab)]
    for s in lab.services:
        for p in s.ports:
            argv.append(f"--srv-host=_{p.name}._{p.protocol.lower()}.{s.name}.{s.namespace}.svc.{d},"
                        f"{s.name}.{s.namespace}.svc.{d},{p.port}")
    return argv


def upstream_argv(listen: str = S.UPSTREAM_DNS_IP) -> list[str]:
    """The internet's resolver: example.com and www.example.com; other names are refused."""
    return _BASE + [f"--listen-address={listen}", "--local=/example.com/",
                    f"--host-record=example.com,{S.EXAMPLE_IP}", f"--host-record=www.example.com,{S.EXAMPLE_IP}"]


def pod_resolv_conf(namespace: str) -> str:
    """What kubelet writes for a dnsPolicy: ClusterFirst pod."""
    d = S.CLUSTER_DOMAIN
    return (f"search {namespace}.svc.{d} svc.{d} {d}\n"
            f"nameserver {S.KUBE_DNS_IP}\noptions ndots:5\n")


def node_resolv_conf() -> str:
    """The node's own resolver (the VPC's), which dnsPolicy: Default pods such as CoreDNS inherit."""
    return f"nameserver {S.UPSTREAM_DNS_IP}\n"
