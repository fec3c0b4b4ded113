"""What a test function gets besides its Test: timeouts clamped to the global deadline, the
vantage's resolv.conf, and objects shared by the tests of one vantage (the HTTP client).

One Context per vantage, created and used on that vantage's own thread and event loop.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .model import Result, Test


@dataclass(frozen=True)
class RunConfig:
    """Timeouts are short on purpose: on a healthy LAN every answer takes milliseconds, and a
    filtered port costs the full timeout, so long timeouts only make a broken cluster slow to judge."""

    connect_timeout: float = 1.5
    http_timeout: float = 2.0
    icmp_timeout: float = 1.0
    syn_timeout: float = 1.5
    vxlan_timeout: float = 1.5
    dns_timeout: float = 2.0
    per_vantage: int = 16          # tests in flight per vantage
    vantage_threads: int = 64      # vantages running at once (each one thread + one event loop)


@dataclass
class Context:
    cfg: RunConfig
    deadline: float                               # time.monotonic() value
    resolv: dict[str, Any] | None = None          # parsed resolv.conf of the vantage
    node_resolv: dict[str, Any] | None = None     # of the vantage's node (what CoreDNS inherits)
    shared: dict[str, Any] = field(default_factory=dict)

    def timeout(self, configured: float) -> float:
        """The configured timeout, or less when the global deadline comes sooner."""
        return max(0.0, min(configured, self.deadline - time.monotonic()))


class CannotRun(Exception):
    """The test cannot run here (no CAP_NET_RAW, scapy or libpcap missing); the message says why."""


def error(test: Test, why: str) -> Result:
    return Result(test, "error", detail=why)
