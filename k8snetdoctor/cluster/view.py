"""ClusterView: the cluster inventory rules judge, read once per run.

Objects are kept exactly as the API serialises them (`kubectl get -o json`), so a view can
come from the live API, from the lab, from a saved bundle, or from files a user made with
kubectl, and rules see the same thing in every case. The accessors below answer the
questions rules ask (a node's InternalIP, its flannel VTEP, a Service's endpoints) in one
place so rules never dig through raw objects.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

FLANNEL = "flannel.alpha.coreos.com/"

_KIND_FIELD = {
    "Node": "nodes",
    "Pod": "pods",
    "Service": "services",
    "EndpointSlice": "endpointSlices",
    "ConfigMap": "configMaps",
    "DaemonSet": "daemonSets",
}


@dataclass(frozen=True)
class FlannelInfo:
    backend: str | None
    public_ip: str | None
    vtep_mac: str | None
    vni: int | None


@dataclass(frozen=True)
class Endpoint:
    address: str
    node: str | None
    ready: bool
    port: int | None = None  # the target port of this service port in the slice
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str
    port: int
    node_port: int | None
    cluster_ip: str | None
    type: str
    external_traffic_policy: str

    @property
    def ref(self) -> str:
        """`ns/svc:port` as kube-proxy writes it in rule comments (no colon for unnamed ports)."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base


@dataclass
class ClusterView:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    endpointSlices: list[dict[str, Any]] = field(default_factory=list)
    configMaps: list[dict[str, Any]] = field(default_factory=list)
    daemonSets: list[dict[str, Any]] = field(default_factory=list)
    source: str = "unknown"

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]], source: str = "objects") -> "ClusterView":
        view = cls(source=source)
        for obj in _flatten(objects):
            attr = _KIND_FIELD.get(obj.get("kind", ""))
            if attr:
                getattr(view, attr).append(redact(obj))
        return view

    @classmethod
    def from_files(cls, paths: Iterable[str]) -> "ClusterView":
        """Load `kubectl get ... -o json` outputs (Lists or single objects)."""
        objs: list[Mapping[str, Any]] = []
        for p in paths:
            with open(p, encoding="utf-8") as fh:
                try:
                    objs.append(json.load(fh))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{p}: not JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_objects(objs, source="files")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ClusterView":
        return cls(**{k: list(d.get(k) or []) for k in _KIND_FIELD.values()}, source=d.get("source", "bundle"))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in _KIND_FIELD.values()}
        d["source"] = self.source
        return d

    # -- nodes -----------------------------------------------------------------------------------
    def node_names(self) -> list[str]:
        return sorted(n["metadata"]["name"] for n in self.nodes)

    def node(self, name: str) -> dict[str, Any] | None:
        return next((n for n in self.nodes if n["metadata"]["name"] == name), None)

    def internal_ip(self, name: str) -> str | None:
        node = self.node(name) or {}
        for a in node.get("status", {}).get("addresses", []) or []:
            if a.get("type") == "InternalIP":
                return a.get("address")
        return None

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """(type, address) pairs of a node: InternalIP, ExternalIP, Hostname, ..."""
        node = self.node(name) or {}
        return [(a.get("type", ""), a.get("address", "")) for a in node.get("status", {}).get("addresses", []) or []]

    def node_by_ip(self, ip: str) -> str | None:
        return next((n for n in self.node_names() if self.internal_ip(n) == ip), None)

    def pod_cidr(self, name: str) -> str | None:
        spec = (self.node(name) or {}).get("spec", {})
        return spec.get("podCIDR") or next(iter(spec.get("podCIDRs") or []), None)

    def annotations(self, name: str) -> dict[str, str]:
        return dict(((self.node(name) or {}).get("metadata", {}).get("annotations") or {}))

    def is_ready(self, name: str) -> bool:
        conds = (self.node(name) or {}).get("status", {}).get("conditions", []) or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    def flannel(self, name: str) -> FlannelInfo | None:
        ann = self.annotations(name)
        if not any(k.startswith(FLANNEL) for k in ann):
            return None
        data: dict[str, Any] = {}
        raw = ann.get(FLANNEL + "backend-data")
        if raw:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                data = {}
        vni = data.get("VNI") if isinstance(data, dict) else None
        return FlannelInfo(
            backend=ann.get(FLANNEL + "backend-type"),
            public_ip=ann.get(FLANNEL + "public-ip-overwrite") or ann.get(FLANNEL + "public-ip"),
            vtep_mac=(data.get("VtepMAC") if isinstance(data, dict) else None),
            vni=int(vni) if isinstance(vni, int) else None,
        )

    def cluster_cidr(self) -> str | None:
        """The pod network: kube-proxy's clusterCIDR, else the supernet of node podCIDRs."""
        cfg = self.kube_proxy_config() or {}
        if cfg.get("clusterCIDR"):
            return str(cfg["clusterCIDR"]).split(",")[0]
        cidrs = [ipaddress.ip_network(c) for n in self.node_names() if (c := self.pod_cidr(n))]
        if not cidrs:
            return None
        net = cidrs[0]
        while not all(c.subnet_of(net) for c in cidrs):
            net = net.supernet()
        return str(net)

    # -- services --------------------------------------------------------------------------------
    def service_ports(self, types: Iterable[str] | None = None) -> list[ServicePort]:
        wanted = set(types) if types else None
        out = []
        for svc in self.services:
            spec = svc.get("spec", {})
            stype = spec.get("type", "ClusterIP")
            if wanted and stype not in wanted:
                continue
            for p in spec.get("ports", []) or []:
                out.append(ServicePort(
                    namespace=svc["metadata"].get("namespace", "default"), name=svc["metadata"]["name"],
                    port_name=p.get("name") or "", protocol=p.get("protocol", "TCP"), port=int(p["port"]),
                    node_port=p.get("nodePort"), cluster_ip=spec.get("clusterIP"), type=stype,
                    external_traffic_policy=spec.get("externalTrafficPolicy") or "Cluster"))
        return out

    def endpoints(self, sp: ServicePort) -> list[Endpoint]:
        """Endpoints of one service port (with their conditions), from the Service's EndpointSlices."""
        out: list[Endpoint] = []
        for es in self._slices_of(sp.namespace, sp.name):
            port = next((p for p in es.get("ports") or [] if (p.get("name") or "") == sp.port_name), None)
            if port is None:
                continue
            for ep in es.get("endpoints") or []:
                cond = ep.get("conditions") or {}
                ready = cond.get("ready", True) is not False
                for addr in ep.get("addresses", []):
                    out.append(Endpoint(address=addr, node=ep.get("nodeName"), ready=ready, port=port.get("port"),
                                        serving=cond.get("serving", ready) is not False,
                                        terminating=bool(cond.get("terminating", False))))
        return out

    def _slices_of(self, namespace: str, service: str) -> list[dict[str, Any]]:
        """Slices by Service, indexed once: rules ask per service port and clusters have thousands.
        The index is rebuilt when the list itself is replaced or changes length (faults, tests)."""
        sig = (id(self.endpointSlices), len(self.endpointSlices))
        if getattr(self, "_slice_sig", None) != sig:
            index: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for es in self.endpointSlices:
                meta = es.get("metadata", {})
                name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
                if name:
                    index.setdefault((meta.get("namespace", "default"), name), []).append(es)
            self._slice_index, self._slice_sig = index, sig
        return self._slice_index.get((namespace, service), [])

    # -- config maps -----------------------------------------------------------------------------
    def config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((c for c in self.configMaps if c["metadata"]["name"] == name
                     and c["metadata"].get("namespace") == namespace), None)

    def kube_proxy_config(self) -> dict[str, Any] | None:
        cm = self.config_map("kube-system", "kube-proxy")
        raw = ((cm or {}).get("data") or {}).get("config.conf")
        if not raw:
            return None
        import yaml  # a dependency of the kubernetes client; only needed here

        try:
            parsed = yaml.safe_load(raw)
        except yaml.YAMLError:
            return None
        return parsed if isinstance(parsed, dict) else None

    # -- pods ------------------------------------------------------------------------------------
    def pods_on(self, node: str) -> list[dict[str, Any]]:
        return [p for p in self.pods if p.get("spec", {}).get("nodeName") == node]


REDACTED = "<redacted by netdoctor>"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def redact(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Drop what may hold credentials before an object can reach a bundle or a report: container
    env values (often tokens and passwords) and the last-applied copy of the whole object."""
    out = json.loads(json.dumps(obj))
    ann = (out.get("metadata") or {}).get("annotations") or {}
    if _LAST_APPLIED in ann:
        ann[_LAST_APPLIED] = REDACTED
    spec = out.get("spec") or {}
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            for env in c.get("env") or []:
                if "value" in env:
                    env["value"] = REDACTED
    return out


def _flatten(objects: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for obj in objects:
        if obj.get("kind", "").endswith("List") or ("items" in obj and "kind" not in obj):
            item_kind = obj.get("kind", "")[:-4] if obj.get("kind", "").endswith("List") else ""
            for item in obj.get("items", []):
                if "kind" not in item and item_kind:
                    item = {**item, "kind": item_kind}
                yield from _flatten([item])
        else:
            yield obj
