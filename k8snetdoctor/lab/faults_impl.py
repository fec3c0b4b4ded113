"""What each fault of the catalogue (lab/faults.py) does to the lab, and how it is undone.

Each `apply_*` gets the lab and the fault's record (name, node, peer) and either fills the
record's declarative parts — `iptables` edits and `view` overrides, which faults.py applies
and removes by recomputing — or changes the dataplane directly, keeping in `data` what the
matching `clear_*` needs, since clear may run in another process much later.
"""
from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

from k8snetdoctor.cluster.view import FLANNEL
from k8snetdoctor.lab import build, dns, flannel, hostroot, kubeproxy_rules, netns
from k8snetdoctor.lab import faults_net as net
from k8snetdoctor.lab import faults_view as fv
from k8snetdoctor.lab import spec as S
from k8snetdoctor.lab.rules import comment
from k8snetdoctor.lab.view import _service, _slice

if TYPE_CHECKING:  # pragma: no cover
    from k8snetdoctor.lab.lab import Lab

Record = dict[str, Any]

# Addresses and objects faults bring in; all outside what `lab up` uses.
WRONG_PUBLIC_NET = "198.51.100."         # TEST-NET-2: a NAT/external address on no interface
STUB_RESOLVER = "127.0.0.53"             # systemd-resolved's stub
STUB_RESOLV = ("# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n"
               f"nameserver {STUB_RESOLVER}\noptions edns0 trust-ad\nsearch .\n")
LATE = S.ServiceSpec("default", "late-nodeport", "10.96.100.70",
                     (S.PortSpec("http", "TCP", 80, S.ECHO_PORT, 30083),), selector={"app": "echo"}, type="NodePort",
                     external_traffic_policy="Cluster")
AGENT_PORT, AGENT_REAL_PORT = 9100, 9101


def coredns_pod(spec: S.LabSpec) -> S.PodSpec:
    return next(p for p in spec.pods if p.kind == "dns")


def hostport_pods(spec: S.LabSpec) -> list[S.PodSpec]:
    return [p for p in spec.pods if p.host_port]


# -- security group / firewall ---------------------------------------------------------------------
def apply_vxlan_blocked(lab: "Lab", r: Record) -> None:
    a, b = r["node"], r["peer"]
    r["iptables"] += [net.sg_insert(a, r["name"], source=lab.node_ip(b), proto="udp", dport=S.VXLAN_PORT),
                      net.sg_insert(b, r["name"], source=lab.node_ip(a), proto="udp", dport=S.VXLAN_PORT)]


def apply_sg_closed(lab: "Lab", r: Record) -> None:
    """NodePort 30080 closed on the node: from outside the VPC, or only from --peer when given."""
    src = {"source": lab.node_ip(r["peer"])} if r["peer"] else {"not_source": S.UNDERLAY_CIDR}
    r["iptables"].append(net.sg_insert(r["node"], r["name"], proto="tcp", orig_dport=S.NODEPORT_CLUSTER, **src))


def apply_kubelet_port_closed(lab: "Lab", r: Record) -> None:
    cp = lab.spec.control_plane.ip
    r["iptables"].append(net.sg_insert(r["node"], r["name"], source=cp, proto="tcp", dport=S.KUBELET_PORT))


def apply_kubelet_exposed(lab: "Lab", r: Record) -> None:
    r["iptables"].append(net.sg_insert(r["node"], r["name"], proto="tcp", dport=S.KUBELET_PORT, target="RETURN"))


def apply_coredns_unreachable_from(lab: "Lab", r: Record) -> None:
    """VXLAN from --node dropped at CoreDNS's node: DNS is the first casualty of a broken overlay."""
    target = coredns_pod(lab.spec).node
    r["iptables"].append(net.sg_insert(target, r["name"], source=lab.node_ip(r["node"]), proto="udp",
                                       dport=S.VXLAN_PORT))


def apply_dns_upstream_down(lab: "Lab", r: Record) -> None:
    """CoreDNS's egress to the upstream resolver dropped on its node (pod egress firewalled)."""
    pod = coredns_pod(lab.spec)
    for proto in ("udp", "tcp"):
        spec = (f"-s {pod.ip}/32 -d {S.UPSTREAM_DNS_IP}/32 -p {proto} -m {proto} --dport 53 "
                f"{comment('lab fault ' + r['name'])} -j DROP")
        r["iptables"].append(net.insert(pod.node, "filter", "FORWARD", spec))


def clear_dns_upstream_down(lab: "Lab", r: Record) -> None:
    """dnsmasq (unlike CoreDNS) parks a repeated query on its dropped forward for ~10 s: start it afresh."""
    pod = coredns_pod(lab.spec)
    net.restart(lab, pod.name, list(lab.process(pod.name).argv))


# -- kube-proxy ------------------------------------------------------------------------------------
def apply_nodeport_rules_missing(lab: "Lab", r: Record) -> None:
    r["iptables"].append(net.flush(r["node"], "nat", "KUBE-NODEPORTS"))


def apply_kube_proxy_stale(lab: "Lab", r: Record) -> None:
    """A Service created after kube-proxy on --node stopped: every other node has its rules."""
    r["view"] += [fv.add(_service(LATE)), fv.add(_slice(LATE, lab.spec))]
    r["iptables"].append(net.frozen(r["node"]))


def apply_backend_split(lab: "Lab", r: Record) -> None:
    """An old kube-proxy image's rules left in iptables-legacy, from before echo-local existed."""
    old = lab.view()
    old.services = [s for s in old.services if s["metadata"]["name"] != "echo-local"]
    net.legacy_load(lab, r["node"], kubeproxy_rules.render(old, r["node"]))


def clear_backend_split(lab: "Lab", r: Record) -> None:
    net.legacy_flush(lab, r["node"])


def apply_etp_local_no_endpoint(lab: "Lab", r: Record) -> None:
    """echo-nodeport switched to externalTrafficPolicy Local while --node's echo pod is not ready."""
    node = r["node"]
    r["view"].append(fv.merge("Service", "echo-nodeport", {"spec": {"externalTrafficPolicy": "Local"}}, "default"))
    view = lab.view()
    gone = {p.ip for p in lab.spec.pods_on(node) if p.labels.get("app") == "echo"}
    for pod in [p for p in lab.spec.pods_on(node) if p.ip in gone]:
        r["view"].append(fv.merge("Pod", pod.name, {"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "ReadinessProbeFailed"},
            {"type": "ContainersReady", "status": "False"}]}}, pod.namespace))
    for es in view.endpointSlices:
        eps = es.get("endpoints") or []
        if any(set(ep.get("addresses") or []) & gone for ep in eps):
            new = [dict(ep, conditions={**(ep.get("conditions") or {}), "ready": False, "serving": False})
                   if set(ep.get("addresses") or []) & gone else ep for ep in eps]
            meta = es["metadata"]
            r["view"].append(fv.merge("EndpointSlice", meta["name"], {"endpoints": new}, meta.get("namespace")))


# -- hostPort --------------------------------------------------------------------------------------
def apply_portmap_missing(lab: "Lab", r: Record) -> None:
    conf = json.loads(hostroot.flannel_conflist())
    conf["plugins"] = [p for p in conf["plugins"] if p.get("type") != "portmap"]
    net.write_file(lab.host_root(r["node"]) / hostroot.CONFLIST, json.dumps(conf, indent=2) + "\n")
    r["iptables"].append(net.without(r["node"], "portmap"))


def clear_portmap_missing(lab: "Lab", r: Record) -> None:
    net.write_file(lab.host_root(r["node"]) / hostroot.CONFLIST, hostroot.flannel_conflist())


def _agent_name(node: str) -> str:
    return f"metrics-agent-{node}"


def apply_hostport_on_hostnetwork(lab: "Lab", r: Record) -> None:
    """A hostNetwork pod declaring hostPort 9100 whose app really listens on 9101."""
    node, name = r["node"], _agent_name(r["node"])
    n = lab.spec.node(node)
    port = {"containerPort": AGENT_PORT, "hostPort": AGENT_PORT, "protocol": "TCP", "name": "metrics"}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "monitoring", "labels": {"app": "metrics-agent"},
                        "uid": f"fault-{lab.name}-{name}", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"nodeName": node, "hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
                    "containers": [{"name": "agent", "image": "example/metrics-agent:1.0", "ports": [port]}]},
           "status": {"phase": "Running", "podIP": n.ip, "podIPs": [{"ip": n.ip}], "hostIP": n.ip,
                      "conditions": [{"type": "Ready", "status": "True"}]}}
    r["view"].append(fv.add(pod))
    net.start(lab, lab.node_ns(node), "pod", name, build.echo_argv(name, node, "pod", [AGENT_REAL_PORT]),
              [f"tcp:{AGENT_REAL_PORT}"])
    r["data"]["process"] = name


def clear_process(lab: "Lab", r: Record) -> None:
    if r["data"].get("process"):
        net.stop(lab, r["data"]["process"])


# -- DNS -------------------------------------------------------------------------------------------
def apply_coredns_loop(lab: "Lab", r: Record) -> None:
    """The node runs systemd-resolved; CoreDNS (dnsPolicy Default) inherits 127.0.0.53 and forwards to itself."""
    pod = coredns_pod(lab.spec)
    root = lab.host_root(pod.node)
    net.write_file(root / "run/systemd/resolve/stub-resolv.conf", STUB_RESOLV)
    net.write_file(root / "etc/resolv.conf", "", symlink_to="../run/systemd/resolve/stub-resolv.conf")
    net.write_file(hostroot.pod_resolv_path(root, pod), STUB_RESOLV)
    for ns in (lab.node_ns(pod.node), lab.pod_ns(pod.name)):
        net.write_file(lab.names.etc_netns(ns) / "resolv.conf", STUB_RESOLV)
    argv = dns.coredns_argv(lab.spec, pod, upstream=STUB_RESOLVER)
    # CoreDNS listens on every address of its pod, 127.0.0.53 included; dnsmasq must be told so.
    # --dns-loop-detect plays the CoreDNS loop plugin: it notices its queries come back to itself.
    argv += [f"--listen-address={STUB_RESOLVER}", "--dns-loop-detect"]
    net.restart(lab, pod.name, argv)
    r["data"]["argv"] = net.argv_text(argv)


def clear_coredns_loop(lab: "Lab", r: Record) -> None:
    pod = coredns_pod(lab.spec)
    root = lab.host_root(pod.node)
    shutil.rmtree(root / "run/systemd", ignore_errors=True)          # `lab up` writes nothing there
    net.write_file(root / "etc/resolv.conf", dns.node_resolv_conf())
    net.write_file(hostroot.pod_resolv_path(root, pod), hostroot.pod_resolv(pod))
    net.write_file(lab.names.etc_netns(lab.node_ns(pod.node)) / "resolv.conf", dns.node_resolv_conf())
    net.write_file(lab.names.etc_netns(lab.pod_ns(pod.name)) / "resolv.conf", hostroot.pod_resolv(pod))
    net.restart(lab, pod.name, dns.coredns_argv(lab.spec, pod))


# -- flannel ---------------------------------------------------------------------------------------
SMALL_UNDERLAY_MTU = 1400


def apply_mtu_mismatch(lab: "Lab", r: Record) -> None:
    """The underlay shrank under flannel (the kernel refuses a VXLAN MTU above its NIC's the other way round)."""
    net.set_mtu(lab, r["node"], "eth0", SMALL_UNDERLAY_MTU)


def clear_mtu_mismatch(lab: "Lab", r: Record) -> None:
    net.set_mtu(lab, r["node"], "eth0", S.UNDERLAY_MTU)


def _wrong_ip(lab: "Lab", node: str) -> str:
    return WRONG_PUBLIC_NET + str(10 + lab.spec.node(node).index % 240)


def apply_vtep_wrong_ip(lab: "Lab", r: Record) -> None:
    """--node announces an address its peers cannot reach, and their flanneld believed it."""
    node = lab.spec.node(r["node"])
    wrong = _wrong_ip(lab, node.name)
    r["view"].append(fv.merge("Node", node.name, {"metadata": {"annotations": {FLANNEL + "public-ip": wrong}}}))
    for peer in lab.spec.nodes:
        if peer.name != node.name:
            net.fdb_move(lab, peer.name, node.vtep_mac, node.ip, wrong)
    r["data"]["wrongIP"] = wrong


def clear_vtep_wrong_ip(lab: "Lab", r: Record) -> None:
    node = lab.spec.node(r["node"])
    for peer in lab.spec.nodes:
        if peer.name != node.name:
            net.fdb_move(lab, peer.name, node.vtep_mac, r["data"]["wrongIP"], node.ip)


def apply_fdb_stale(lab: "Lab", r: Record) -> None:
    """--node still uses --peer's VTEP MAC from before the peer's flannel.1 was recreated."""
    peer = lab.spec.node(r["peer"])
    old = S.vtep_mac(lab.name, peer.name + "/before-restart")
    ns = lab.node_ns(r["node"])
    netns.bridge_batch(ns, [f"fdb del {peer.vtep_mac} dev {flannel.DEV} dst {peer.ip}",
                                f"fdb append {old} dev {flannel.DEV} dst {peer.ip}"])
    netns.ip_batch(ns, [f"neigh replace {peer.vtep_ip} lladdr {old} dev {flannel.DEV} nud permanent"])
    r["data"]["oldMAC"] = old


def clear_fdb_stale(lab: "Lab", r: Record) -> None:
    peer = lab.spec.node(r["peer"])
    ns = lab.node_ns(r["node"])
    netns.bridge_batch(ns, [f"fdb del {r['data']['oldMAC']} dev {flannel.DEV} dst {peer.ip}"], force=True)
    net.peer_entries(lab, r["node"], peer.name, True)


def apply_no_podcidr(lab: "Lab", r: Record) -> None:
    """--node got no podCIDR: flanneld there exits ('pod cidr not assigned'), peers have no lease for it."""
    node = r["node"]
    ann = {k: None for k in lab.view().annotations(node) if k.startswith(FLANNEL)}
    r["view"].append(fv.merge("Node", node, {"spec": {"podCIDR": None, "podCIDRs": None},
                                             "metadata": {"annotations": ann}}))
    net.vtep_device(lab, node, False)
    for peer in lab.spec.nodes:
        if peer.name != node:
            net.peer_entries(lab, peer.name, node, False)


def clear_no_podcidr(lab: "Lab", r: Record) -> None:
    node = r["node"]
    net.vtep_device(lab, node, True)
    for peer in lab.spec.nodes:
        if peer.name != node:
            net.peer_entries(lab, peer.name, node, True)


# -- kernel switches -------------------------------------------------------------------------------
IP_FORWARD, BRIDGE_NF = "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"


def apply_ip_forward_off(lab: "Lab", r: Record) -> None:
    net.set_sysctl(lab, r["node"], IP_FORWARD, 0)


def clear_ip_forward_off(lab: "Lab", r: Record) -> None:
    net.set_sysctl(lab, r["node"], IP_FORWARD, 1)


def apply_bridge_nf_off(lab: "Lab", r: Record) -> None:
    """Per namespace on kernels >= 5.3; on older ones the switch is global, so only the host root says 0."""
    if net.sysctl_in_netns(lab, r["node"], BRIDGE_NF):
        net.set_sysctl(lab, r["node"], BRIDGE_NF, 0)
        r["data"]["where"] = "netns"
    else:
        net.write_file(lab.host_root(r["node"]) / "proc/sys/net/bridge/bridge-nf-call-iptables", "0\n")
        r["data"]["where"] = "host-root"


def clear_bridge_nf_off(lab: "Lab", r: Record) -> None:
    if r["data"].get("where") == "netns":
        net.set_sysctl(lab, r["node"], BRIDGE_NF, 1)
    else:
        (lab.host_root(r["node"]) / "proc/sys/net/bridge/bridge-nf-call-iptables").unlink(missing_ok=True)
