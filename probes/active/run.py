"""Run planned tests: each vantage on its own thread and event loop, all under one global deadline.

A vantage's thread is placed where its packets must leave from (a lab namespace, or simply
this host on a real node) by the executor; every socket a test opens is created on that
thread, so it belongs there. Within a vantage, tests run concurrently up to `per_vantage`;
vantages run side by side up to `vantage_threads`. When the deadline comes, unfinished tests
are reported as "skipped", so the evidence always says what was and was not tested. Nothing
here prints; progress goes to the optional callback.
"""
from __future__ import annotations

import asyncio
import importlib
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

from k8snetdoctor.model import Evidence

from . import collate
from .context import CannotRun, Context, RunConfig
from .model import Plan, Result, Test, Vantage

T = TypeVar("T")
GRACE_S = 5.0
# Results that only mean "nothing came back in time" — meaningless when the deadline shortened the wait.
_SILENCE = frozenset({"timeout", "filtered", "no-reply"})
_TIMEOUT_OF: dict[str, Callable[[RunConfig], float]] = {
    "http": lambda c: c.http_timeout, "tcp": lambda c: c.connect_timeout, "syn": lambda c: c.syn_timeout,
    "icmp": lambda c: c.icmp_timeout, "df-ping": lambda c: c.icmp_timeout, "vxlan": lambda c: c.vxlan_timeout,
    "dns": lambda c: c.dns_timeout}
Progress = Callable[[int, int], None]


class VantageExecutor(Protocol):
    """Where a vantage's code runs, and the files that describe the vantage."""

    def call(self, vantage: Vantage, fn: Callable[[], T], timeout: float) -> T:
        """Run fn() on a thread placed at the vantage (its network namespace); return its result."""

    def resolv_conf(self, vantage: Vantage) -> tuple[str, str] | None:
        """(path as shown to people, text) of the vantage's resolv.conf, or None."""

    def node_resolv_conf(self, node: str) -> tuple[str, str] | None:
        """The same for a node's own resolv.conf (what CoreDNS on that node inherits)."""

    def where(self, vantage: Vantage) -> str:
        """A few words for `source`: "netns ndlab-x-node-1", "host"."""


class LocalExecutor:
    """Runs on this host as it is: the probe on a real node, in the node (hostNetwork) vantage."""

    def __init__(self, host_root: str = "/"):
        self.host_root = host_root

    def call(self, vantage: Vantage, fn: Callable[[], T], timeout: float) -> T:
        return fn()

    def resolv_conf(self, vantage: Vantage) -> tuple[str, str] | None:
        return _read(Path(self.host_root) / "etc/resolv.conf")

    def node_resolv_conf(self, node: str) -> tuple[str, str] | None:
        return _read(Path(self.host_root) / "etc/resolv.conf")

    def where(self, vantage: Vantage) -> str:
        return "host"


def _read(path: Path) -> tuple[str, str] | None:
    try:
        return str(path), path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _method(test: Test):
    from . import dns, http, icmp, mtu, tcp, vxlan

    return {"http": http.get, "tcp": tcp.connect, "syn": tcp.syn, "icmp": icmp.run, "df-ping": mtu.run,
            "vxlan": vxlan.echo, "dns": dns.run}[test.method]


def _preload(tests: Sequence[Test]) -> None:
    """Import heavy modules once here: importing on 20 vantage threads at once only serialises on the
    import lock, and scapy's import-time setup should not run inside some namespace by chance."""
    methods = {t.method for t in tests}
    wanted = []
    if methods & {"syn", "vxlan"}:
        wanted += ["scapy.layers.inet", "scapy.layers.l2", "scapy.layers.vxlan", "scapy.arch.common"]
    if "vxlan" in methods:
        wanted += ["scapy.libs.winpcapy"]
    if "dns" in methods:
        wanted += ["dns.message", "dns.rcode", "dns.rdatatype", "dns.rdtypes.IN.A"]
    for mod in wanted:
        try:
            importlib.import_module(mod)
        except (ImportError, OSError):
            pass   # each test that needs it reports the problem as its own error


async def _vantage_main(tests: list[Test], ctx: Context, tick: Callable[[], None]) -> list[Result]:
    sem = asyncio.Semaphore(ctx.cfg.per_vantage)

    async def one(t: Test) -> Result:
        try:
            async with sem:
                left = ctx.deadline - time.monotonic()
                if left <= 0:
                    return Result(t, "skipped", detail="global deadline reached before the test started")
                r = await _method(t)(t, ctx)
                need = _TIMEOUT_OF[t.method](ctx.cfg)
                if left < need and r.latency_ms is None and r.result in _SILENCE:
                    return Result(t, "skipped", detail=f"global deadline cut the test short ({left:.1f}s of "
                                                       f"{need:.1f}s): {r.detail}")
                return r
        except CannotRun as exc:
            return Result(t, "error", detail=str(exc))
        except Exception as exc:  # noqa: BLE001 - a test bug costs only that test
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return Result(t, "error", detail=f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:"
                                             f"{where.lineno})")
        finally:
            tick()

    lag = asyncio.ensure_future(_watch_lag(ctx))
    tasks = [asyncio.ensure_future(one(t)) for t in tests]
    try:
        await asyncio.wait(tasks, timeout=max(0.0, ctx.deadline - time.monotonic()) + 0.5)
    finally:
        for t in tasks + [lag]:
            t.cancel()
        await asyncio.gather(*tasks, lag, return_exceptions=True)
    out = []
    for t, task in zip(tests, tasks):
        if task.cancelled() or task.exception() is not None:
            out.append(Result(t, "skipped", detail="global deadline reached"))
        else:
            out.append(task.result())
    return out


def run_tests(tests: Iterable[Test], vantage_executor: VantageExecutor, deadline_s: float, *,
              config: RunConfig | None = None, progress: Progress | None = None,
              plan: Plan | None = None) -> list[Evidence]:
    """Evidence items for every test (per vantage and kind) plus one `active-run` summary item."""
    cfg = config or RunConfig()
    tests = list(tests)
    t_start = time.monotonic()
    deadline = t_start + deadline_s
    _preload(tests)
    groups: dict[str, list[Test]] = {}
    vantages: dict[str, Vantage] = {}
    for t in tests:
        groups.setdefault(t.vantage.id, []).append(t)
        vantages[t.vantage.id] = t.vantage
    lock, done, ticked = threading.Lock(), [0], {vid: 0 for vid in groups}

    def tick_for(vid: str, n: int = 1) -> Callable[[], None]:
        def tick() -> None:
            with lock:
                done[0] += n
                ticked[vid] += n
                now = done[0]
            if progress:
                try:
                    progress(now, len(tests))
                except Exception:  # noqa: BLE001 - a caller's display bug must not stop the tests
                    pass
        return tick

    results: dict[str, list[Result]] = {}
    resolvs: dict[str, dict[str, Any] | None] = {}
    lags: dict[str, float | None] = {}
    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(len(groups), cfg.vantage_threads)),
                            thread_name_prefix="netdoctor-vantage") as pool:
        futs = {vid: pool.submit(_vantage_job, vantage_executor, vantages[vid], ts, deadline, cfg, tick_for(vid))
                for vid, ts in groups.items()}
        for vid, fut in futs.items():
            try:
                results[vid], resolvs[vid], lags[vid] = fut.result()
            except Exception as exc:  # noqa: BLE001 - a vantage that cannot start is evidence, not a crash
                failures[vid] = f"{type(exc).__name__}: {exc}"
                results[vid] = [Result(t, "error", detail=f"vantage could not run: {exc}") for t in groups[vid]]
                if len(groups[vid]) > ticked[vid]:
                    tick_for(vid, len(groups[vid]) - ticked[vid])()
                resolvs[vid], lags[vid] = None, None
    elapsed = time.monotonic() - t_start
    wheres = {vid: vantage_executor.where(v) for vid, v in vantages.items()}
    return collate.evidence(vantages, results, resolvs, wheres, failures, lags) + \
        [collate.run_summary(results, deadline_s, elapsed, plan, failures, lags)]


async def _watch_lag(ctx: Context, period: float = 0.02) -> None:
    """Record how late this loop wakes up. Timeouts of connect and HTTP are measured by the loop, so
    a loop starved for a large part of a timeout (many vantages sharing one interpreter, as in
    the lab) could turn a slow answer into a "timeout": the evidence says how close that came."""
    worst = 0.0
    try:
        while True:
            t = time.monotonic()
            await asyncio.sleep(period)
            worst = max(worst, time.monotonic() - t - period)
            ctx.shared["maxLoopLagMs"] = round(worst * 1000, 1)
    except asyncio.CancelledError:
        return


def _vantage_job(executor: VantageExecutor, v: Vantage, tests: list[Test], deadline: float, cfg: RunConfig,
                 tick: Callable[[], None]) -> tuple[list[Result], dict[str, Any] | None, float | None]:
    from k8snetdoctor.probes.resolv import parse_resolv

    own = executor.resolv_conf(v) if v.kind != "external" else None
    node = executor.node_resolv_conf(v.node) if v.node else None
    resolv = {"path": own[0], **parse_resolv(own[1])} if own else None
    node_resolv = {"path": node[0], **parse_resolv(node[1])} if node else None
    ctx = Context(cfg, deadline, resolv, node_resolv)
    left = max(0.0, deadline - time.monotonic())
    results = executor.call(v, lambda: asyncio.run(_vantage_main(tests, ctx, tick)), timeout=left + GRACE_S)
    return results, resolv, ctx.shared.get("maxLoopLagMs")
