"""Don't-Fragment pings at the expected MTU and one byte above it (FM-08).

At the MTU the path must carry the packet; one byte above it must be refused — locally
(EMSGSIZE: the interface MTU is what was expected) or by an ICMP "fragmentation needed" from
a hop that knows better. A timeout at the MTU while small pings pass is the classic overlay
MTU mismatch: big packets vanish silently somewhere below. The route MTU and any reported
next-hop MTU are kept so a rule can say which MTU is wrong, not only that one is.
"""
from __future__ import annotations

from .context import Context
from .icmp import echo
from .model import Result, Test


async def run(test: Test, ctx: Context) -> Result:
    size = int(test.params["size"])
    e = await echo(test.host, ctx.timeout(ctx.cfg.icmp_timeout), size=size, df=True)
    return Result(test, e.result, e.latency_ms, e.detail,
                  {"size": size, "mtu": test.params.get("mtu"), "routeMtu": e.route_mtu,
                   "reportedMtu": e.reported_mtu, "icmpFrom": e.icmp_from,
                   "local": e.result == "too-big" and e.reported_mtu is None})
