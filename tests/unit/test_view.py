"""ClusterView answers the questions rules ask, from API-shaped JSON."""
import json

import pytest
from support import KP126, kp_view

from k8snetdoctor.cluster.view import ClusterView


def test_nodes_and_addresses_from_kubectl_json():
    v = kp_view()
    assert v.node_names() == ["node-a", "node-b"]
    assert v.internal_ip("node-b") == "10.250.0.6" and v.node_by_ip("10.250.0.2") == "node-a"
    assert v.pod_cidr("node-b") == "10.244.1.0/24"
    assert ("Hostname", "node-a") in v.addresses("node-a")
    assert v.cluster_cidr() == "10.244.0.0/23"  # supernet of the podCIDRs when kube-proxy's config is absent


def test_endpoints_carry_node_port_and_conditions_and_follow_changes():
    v = kp_view()
    sp = next(p for p in v.service_ports(["NodePort"]) if p.ref == "fx/web-nodeport:http")
    eps = v.endpoints(sp)
    assert {(e.address, e.node, e.port, e.ready) for e in eps} == {
        ("10.244.0.12", "node-a", 8080, True), ("10.244.1.12", "node-b", 8080, True)}
    extra = json.loads(json.dumps(next(s for s in v.endpointSlices if s["metadata"]["name"] == "web-nodeport-manual")))
    extra["metadata"]["name"] = "web-nodeport-extra"
    extra["endpoints"] = [{"addresses": ["10.244.1.99"], "nodeName": "node-b", "conditions": {"ready": False}}]
    v.endpointSlices.append(extra)
    assert ("10.244.1.99", False) in {(e.address, e.ready) for e in v.endpoints(sp)}


def test_flannel_annotations_and_kube_proxy_config():
    node = {"kind": "Node", "metadata": {"name": "n1", "annotations": {
        "flannel.alpha.coreos.com/backend-type": "vxlan",
        "flannel.alpha.coreos.com/backend-data": '{"VNI":1,"VtepMAC":"aa:f6:23:e5:46:7a"}',
        "flannel.alpha.coreos.com/public-ip": "10.0.0.11"}}, "spec": {}, "status": {}}
    cm = {"kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
          "data": {"config.conf": "mode: ipvs\nclusterCIDR: 10.42.0.0/16\n"}}
    v = ClusterView.from_objects([{"kind": "List", "items": [node, cm]}])
    f = v.flannel("n1")
    assert (f.backend, f.public_ip, f.vtep_mac, f.vni) == ("vxlan", "10.0.0.11", "aa:f6:23:e5:46:7a", 1)
    assert v.kube_proxy_config()["mode"] == "ipvs" and v.cluster_cidr() == "10.42.0.0/16"
    assert ClusterView.from_dict(v.to_dict()).to_dict() == v.to_dict()


def test_from_files_reports_which_file_is_not_json(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("apiVersion: v1")
    with pytest.raises(ValueError, match="c.json: not JSON"):
        ClusterView.from_files([str(KP126 / "nodes.json"), str(bad)])


def test_credentials_never_enter_the_view():
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "d", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"env": "DB_PASSWORD=hunter2"}'}},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "env": [
            {"name": "DB_PASSWORD", "value": "hunter2"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}}
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "aHVudGVyMg=="}}
    v = ClusterView.from_objects([pod, secret])
    dumped = json.dumps(v.to_dict())
    assert "hunter2" not in dumped and "aHVudGVyMg" not in dumped
    assert v.pods[0]["spec"]["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "s"
    assert pod["spec"]["containers"][0]["env"][0]["value"] == "hunter2", "the caller's object is not changed"
