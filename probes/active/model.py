"""The nouns of active testing: where a test runs from, what it sends, what came back.

Kept free of I/O so the planner and the evidence format can be tested without root, and so a
plan can be printed or filtered before a single packet is sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Which Evidence kind a test's result lands in.
CONN, VXLAN_ECHO, MTU, DNS = "conn", "vxlan-echo", "mtu", "dns"
KINDS: tuple[str, ...] = (CONN, VXLAN_ECHO, MTU, DNS)

# What a test is expected to show on a healthy cluster. It states the planner's intent (an
# externalTrafficPolicy: Local NodePort on a node without an endpoint drops by design), so a
# rule can tell "reachable, as meant" from "reachable, but should not be" (kubelet from outside).
REACHABLE, UNREACHABLE, ANY = "reachable", "unreachable", "any"
OK, TOO_BIG = "ok", "too-big"
ANSWER, NXDOMAIN = "answer", "nxdomain"

# Results that count as "got through" / "did not get through" for the expectation check.
PASSED = frozenset({"ok", "open", "reply"})
BLOCKED = frozenset({"closed", "filtered", "refused", "timeout", "unreachable", "no-reply", "reset"})


@dataclass(frozen=True)
class Vantage:
    """A place tests are sent from: a node's host network, a pod on a node, or outside the cluster.

    id: "node/<node>", "pod/<node>" or "external"; ip: the vantage's own address when known
    (a pod vantage's pod IP, so other vantages can ping it).
    """

    id: str
    kind: str                      # node | pod | external
    node: str | None = None
    ip: str | None = None
    name: str = ""                 # pod name for pod vantages, node name for node vantages

    @classmethod
    def for_node(cls, node: str, ip: str | None = None) -> "Vantage":
        return cls(id=f"node/{node}", kind="node", node=node, ip=ip, name=node)

    @classmethod
    def for_pod(cls, node: str, pod: str, ip: str | None = None) -> "Vantage":
        return cls(id=f"pod/{node}", kind="pod", node=node, ip=ip, name=pod)

    @classmethod
    def external(cls, ip: str | None = None) -> "Vantage":
        return cls(id="external", kind="external", node=None, ip=ip, name="external")

    @property
    def label(self) -> str:
        if self.kind == "pod":
            return f"pod {self.name}@{self.node}"
        return f"node {self.node}" if self.kind == "node" else "external"


@dataclass(frozen=True)
class Test:
    """One probe: from a vantage, by a method, to a host (and port), with what a healthy cluster shows.

    `params` carries what only some methods need (HTTP path, DF size, DNS name, VXLAN headers).
    """

    __test__ = False   # pytest: a class named Test is not a test case

    id: str
    kind: str                      # evidence kind: conn | vxlan-echo | mtu | dns
    method: str                    # http | tcp | syn | icmp | vxlan | df-ping | dns
    category: str                  # pod-pod, node-pod, pod-node, pod-clusterip, nodeport, hostport, kubelet, ...
    vantage: Vantage
    host: str                      # an IP; for dns also "@resolv" / "@node-resolv"
    port: int | None = None
    proto: str = "tcp"             # tcp | udp | icmp
    target: str = ""               # what is behind host: a pod, a node, a service port
    target_node: str | None = None
    expect: str = REACHABLE
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Result:
    """What one test saw. `result` uses a small per-method vocabulary (docs/evidence.md)."""

    test: Test
    result: str
    latency_ms: float | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        """Whether the result matches the test's expectation; None when nothing was judged (any
        outcome acceptable, or the test could not run or was cut by the deadline)."""
        return expectation_met(self.test.expect, self.result)


def expectation_met(expect: str, result: str) -> bool | None:
    if expect == ANY or result in ("error", "skipped"):
        return None
    if expect == REACHABLE:
        return result in PASSED
    if expect == UNREACHABLE:
        return result in BLOCKED
    return result == expect          # mtu ok/too-big, dns answer/nxdomain


@dataclass
class Plan:
    """The tests to run plus what the planner decided about coverage (sampling, what it left out)."""

    tests: list[Test]
    notes: list[str] = field(default_factory=list)
    sampling: dict[str, Any] = field(default_factory=dict)

    def count(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tests:
            out[t.category] = out.get(t.category, 0) + 1
        return out
