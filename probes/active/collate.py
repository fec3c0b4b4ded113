"""Turn test results into Evidence: one item per vantage and kind, plus a summary of the run.

Grouping per vantage keeps provenance exact (which node, which namespace, which resolv.conf)
while a 10-node mesh stays a few dozen items instead of a thousand. Each entry carries the
test's expectation next to its result, so a rule can tell a path that is closed by design
from one that is broken; the excerpt lists failures first, in words a person can scan.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from k8snetdoctor.model import Evidence, clip

from .dns import resolv_summary
from .model import DNS, KINDS, MTU, VXLAN_ECHO, Plan, Result, Vantage


def entry(r: Result) -> dict[str, Any]:
    t = r.test
    e: dict[str, Any] = {"test": t.id, "category": t.category, "method": t.method, "from": t.vantage.id,
                         "to": t.target, "toNode": t.target_node, "host": t.host, "port": t.port, "proto": t.proto,
                         "expect": t.expect, "result": r.result, "ok": r.ok, "latencyMs": r.latency_ms,
                         "detail": r.detail}
    p, x = t.params, r.extra
    if t.kind == VXLAN_ECHO:
        e.update(vni=p.get("vni"), srcVtep={"ip": p.get("srcVtepIp"), "mac": p.get("srcVtepMac")},
                 dstVtep={"ip": p.get("dstVtepIp"), "mac": p.get("dstVtepMac")}, delivered=x.get("delivered"),
                 replySrcPort=x.get("srcPort"), source=x.get("source"), captureIface=x.get("captureIface"))
    elif t.kind == MTU:
        e.update(size=p.get("size"), mtu=p.get("mtu"),
                 **{k: x.get(k) for k in ("routeMtu", "reportedMtu", "icmpFrom", "local")})
    elif t.kind == DNS:
        e.update(qname=p.get("qname"), rdtype=p.get("rdtype", "A"), role=p.get("role"), search=p.get("search"),
                 want=p.get("want"), server=x.get("server"), serverClass=x.get("serverClass"), rcode=x.get("rcode"),
                 answers=x.get("answers", []))
        if "tried" in x:
            e["tried"] = x["tried"]
    else:
        e.update({k: v for k, v in x.items() if k in ("status", "url", "source", "rttMs")})
    return e


def line(e: Mapping[str, Any]) -> str:
    mark = {True: "ok  ", False: "FAIL", None: {"error": "ERR ", "skipped": "skip"}.get(e["result"], "--  ")}[e["ok"]]
    if e["method"] == "dns":
        what = f"{e['qname']} @{e.get('server') or e['host']}" + (" (search list)" if e.get("search") else "")
    else:
        what = f"{e['to']} {e['host']}" + (f":{e['port']}" if e.get("port") else "")
        if e["method"] == "df-ping":
            what += f" DF size {e['size']}"
    lat = f" {e['latencyMs']:.1f}ms" if e.get("latencyMs") is not None else ""
    want = f" (expected {e['expect']})" if e["ok"] is False else ""
    detail = f": {e['detail']}" if e.get("detail") else ""
    return f"{mark} {e['category']:<14} {e['method']:<7} {what} -> {e['result']}{lat}{want}{detail}"


def evidence(vantages: Mapping[str, Vantage], results: Mapping[str, list[Result]],
             resolvs: Mapping[str, dict[str, Any] | None], wheres: Mapping[str, str],
             failures: Mapping[str, str], lags: Mapping[str, float | None] | None = None) -> list[Evidence]:
    out = []
    for vid, rs in results.items():
        v = vantages[vid]
        for kind in KINDS:
            mine = [r for r in rs if r.test.kind == kind]
            if not mine:
                continue
            entries = [entry(r) for r in mine]
            methods = sorted({r.test.method for r in mine})
            data: dict[str, Any] = {"vantage": {"id": v.id, "kind": v.kind, "node": v.node, "name": v.name,
                                                "ip": v.ip, "where": wheres.get(vid, ""),
                                                "maxLoopLagMs": (lags or {}).get(vid)}, "results": entries}
            if kind == DNS:
                data["resolv"] = resolv_summary(resolvs.get(vid), mine[0].test.params)
            lines = sorted((line(e) for e in entries), key=lambda ln: ("FAIL", "ERR ", "skip").index(ln[:4])
                           if ln[:4] in ("FAIL", "ERR ", "skip") else 3)
            errors = {e["detail"] for e in entries if e["result"] == "error"}
            err = failures.get(vid) or (next(iter(errors)) if len(errors) == 1 and
                                        all(e["result"] == "error" for e in entries) else None)
            out.append(Evidence(kind=kind, node=v.node, vantage=v.kind,  # type: ignore[arg-type]
                                source=f"netdoctor active {kind} ({', '.join(methods)}) from {v.label} "
                                       f"in {wheres.get(vid, '?')}",
                                data=data, excerpt=clip("\n".join(lines)), error=err))
    return out


def run_summary(results: Mapping[str, list[Result]], deadline_s: float, elapsed: float, plan: Plan | None,
                failures: Mapping[str, str], lags: Mapping[str, float | None] | None = None) -> Evidence:
    all_r = [r for rs in results.values() for r in rs]
    by_result = Counter(r.result for r in all_r)
    failing = sum(1 for r in all_r if r.ok is False)
    data = {"deadlineS": deadline_s, "elapsedS": round(elapsed, 3), "tests": len(all_r), "failing": failing,
            "byResult": dict(sorted(by_result.items())), "skipped": by_result.get("skipped", 0),
            "vantages": sorted(results), "vantageErrors": dict(failures),
            "maxLoopLagMs": max((v for v in (lags or {}).values() if v is not None), default=None),
            "byCategory": dict(sorted(Counter(r.test.category for r in all_r).items())),
            "plan": {"notes": plan.notes, "sampling": plan.sampling} if plan else None}
    text = (f"{len(all_r)} tests from {len(results)} vantages in {elapsed:.2f}s (deadline {deadline_s:.0f}s): "
            f"{failing} not as expected, {by_result.get('skipped', 0)} skipped, {by_result.get('error', 0)} errors")
    notes = "\n".join(plan.notes) if plan and plan.notes else ""
    return Evidence(kind="active-run", node=None, vantage="runner", source="netdoctor active run",
                    data=data, excerpt=clip(text + ("\n" + notes if notes else "")))

