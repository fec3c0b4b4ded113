"""The DNS part of the plan: the same names asked of the ClusterIP, of each CoreDNS pod, and upstream.

Asking one name several ways is what tells the faults apart: the ClusterIP failing while every
CoreDNS pod answers points at kube-proxy; only the pods on other nodes failing points at the
overlay (FM-32); cluster names answering while external ones fail points upstream (FM-33);
CoreDNS's own upstream being a loopback stub or the cluster DNS itself is a loop (FM-29).
"""
from __future__ import annotations

from k8snetdoctor.cluster.view import ClusterView

from .model import ANSWER, DNS, NXDOMAIN, Test, Vantage
from .targets import ClusterDns, PlanConfig

RESOLV, NODE_RESOLV = "@resolv", "@node-resolv"


def dns_tests(view: ClusterView, cfg: PlanConfig, dns: ClusterDns, nodes: list[str],
              node_v: dict[str, Vantage], pod_v: dict[str, Vantage]) -> list[Test]:
    d = cfg.cluster_domain
    api_ip = _cluster_ip(view, "default", "kubernetes")
    dns_ns = cfg.dns_service[0]
    svc_fqdn, svc_ip = _service_name(view, cfg)
    context = {"clusterDns": list(dns.cluster_ips), "corednsEndpoints": [ip for ip, _ in dns.endpoints],
               "corefileForward": dns.forward}
    servers = [(ip, "cluster-ip") for ip in dns.cluster_ips] + [(ip, "coredns-endpoint") for ip, _ in dns.endpoints]
    ext = cfg.external_name.rstrip(".") + "."
    out: list[Test] = []

    def q(v: Vantage, qname: str, server: str, role: str, expect: str = ANSWER, want: str | None = None,
          search: bool = False) -> None:
        node = next((n for ip, n in dns.endpoints if ip == server), None)
        out.append(Test(f"dns:{v.id}->{qname}@{server}", DNS, "dns", f"dns-{role}", v, server, 53, "udp",
                        qname, node, expect,
                        {"qname": qname, "rdtype": "A", "role": role, "want": [want] if want else None,
                         "search": search, **context}))

    for n in nodes:
        pv, nv = pod_v.get(n), node_v.get(n)
        if pv:
            names = [(f"kubernetes.default.svc.{d}.", api_ip)]
            if svc_fqdn:
                names.append((svc_fqdn, svc_ip))
            for server, role in servers:
                for qname, want in names:
                    q(pv, qname, server, role, want=want)
                q(pv, ext, server, role)
            for server, role in servers[:1]:
                q(pv, f"netdoctor-absent.{dns_ns}.svc.{d}.", server, role, expect=NXDOMAIN)
            q(pv, "kubernetes.default", RESOLV, "resolv", want=api_ip, search=True)
            q(pv, cfg.external_name.rstrip("."), RESOLV, "resolv", search=True)
            if n in dns.nodes:
                # What CoreDNS forwards to, asked from a pod network on CoreDNS's node: a loopback
                # stub there is the pod itself (FM-29), the cluster DNS there is a loop.
                for target in (dns.forward or []):
                    q(pv, ext, NODE_RESOLV if target.startswith("/") else target, "coredns-upstream")
        if nv:
            for server, role in servers:
                q(nv, f"kubernetes.default.svc.{d}.", server, role, want=api_ip)
            q(nv, cfg.external_name.rstrip("."), RESOLV, "node-resolv", search=True)
    return out


def _cluster_ip(view: ClusterView, ns: str, name: str) -> str | None:
    return next((sp.cluster_ip for sp in view.service_ports() if (sp.namespace, sp.name) == (ns, name)
                 and sp.cluster_ip and sp.cluster_ip != "None"), None)


def _service_name(view: ClusterView, cfg: PlanConfig) -> tuple[str | None, str | None]:
    """A Service FQDN besides `kubernetes`: the first echo Service, else the DNS Service itself."""
    sel = cfg.echo_selectors[0] if cfg.echo_selectors else {}
    cands = sorted(view.services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"]))
    for svc in cands:
        spec = svc.get("spec") or {}
        if sel and spec.get("selector") == dict(sel) and spec.get("clusterIP") not in (None, "None"):
            return _fqdn(svc, cfg), spec["clusterIP"]
    ns, name = cfg.dns_service
    ip = _cluster_ip(view, ns, name)
    return (f"{name}.{ns}.svc.{cfg.cluster_domain}.", ip) if ip else (None, None)


def _fqdn(svc: dict, cfg: PlanConfig) -> str:
    m = svc["metadata"]
    return f"{m['name']}.{m.get('namespace', 'default')}.svc.{cfg.cluster_domain}."
