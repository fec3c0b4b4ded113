"""What a fault changes in the lab's ClusterView, kept as data in the state file.

Some faults change what the API server would say (a node without podCIDR, a new Service, a
hostNetwork pod), and every process that builds the lab's view (`netdoctor check --lab`,
`lab status`, the tests) must see the same change. So a fault records its view changes as
plain override entries, and `Lab.view()` replays them over the view built from the spec:

    {"op": "add", "object": {...}}                                   a new API object
    {"op": "remove", "kind": "Pod", "namespace": "ns", "name": "x"}  an object gone
    {"op": "merge", "kind": "Node", "name": "node-1", "patch": {...}} a JSON merge patch (RFC 7386)
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

from k8snetdoctor.cluster.view import ClusterView

_FIELD = {"Node": "nodes", "Pod": "pods", "Service": "services", "EndpointSlice": "endpointSlices",
          "ConfigMap": "configMaps", "DaemonSet": "daemonSets"}


def add(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"op": "add", "object": copy.deepcopy(dict(obj))}


def remove(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    return {"op": "remove", "kind": kind, "namespace": namespace, "name": name}


def merge(kind: str, name: str, patch: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
    return {"op": "merge", "kind": kind, "namespace": namespace, "name": name, "patch": copy.deepcopy(dict(patch))}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, None deletes a key, anything else (lists too) replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def apply(view: ClusterView, overrides: Iterable[Mapping[str, Any]]) -> ClusterView:
    """Replay overrides in order onto `view` (edited in place, and returned)."""
    for o in overrides:
        if o["op"] == "add":
            obj = copy.deepcopy(o["object"])
            _items(view, obj["kind"]).append(obj)
            continue
        items = _items(view, o["kind"])
        idx = next((i for i, obj in enumerate(items) if _is(obj, o.get("name"), o.get("namespace"))), None)
        if idx is None:
            continue        # the object is already gone: an override never resurrects one
        if o["op"] == "remove":
            del items[idx]
        elif o["op"] == "merge":
            items[idx] = merge_patch(items[idx], o["patch"])
        else:
            raise ValueError(f"unknown view override op {o['op']!r}")
    return view


def _items(view: ClusterView, kind: str) -> list[dict[str, Any]]:
    try:
        return getattr(view, _FIELD[kind])
    except KeyError:
        raise ValueError(f"the lab's view holds no {kind} objects") from None


def _is(obj: Mapping[str, Any], name: str | None, namespace: str | None) -> bool:
    meta = obj.get("metadata") or {}
    return meta.get("name") == name and (namespace is None or meta.get("namespace") == namespace)
