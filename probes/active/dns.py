"""DNS queries with dnspython, from pod and host vantages, the way their resolvers would ask.

A query to a named server is one UDP exchange. A query "through resolv.conf" emulates glibc:
the vantage's own nameservers in order, and its search list applied according to ndots
(a pod's `kubernetes.default` becomes kubernetes.default.default.svc.cluster.local, then
kubernetes.default.svc.cluster.local, ...), because that expansion is what a pod really sends
and a broken search path or ndots:5 storm only shows when it is reproduced. The resolv.conf is
read from the vantage (a lab pod's sandbox file, the node's /etc/resolv.conf), not from here.

Each server is also classified: a loopback address in a node's resolv.conf is a stub resolver
(127.0.0.53 systemd-resolved) that CoreDNS, inheriting the file, would reach as itself (FM-29);
the cluster DNS or a CoreDNS pod there is a forwarding loop (FM-33).
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any

from ._net import describe, recv_match, since, stamp, word
from .context import CannotRun, Context
from .model import Result, Test
from .plan_dns import NODE_RESOLV, RESOLV

TRANSIENT = ("timeout", "servfail", "unreachable", "refused", "error")


def ndots(resolv: dict[str, Any]) -> int:
    for opt in resolv.get("options") or []:
        if opt.startswith("ndots:"):
            try:
                return min(15, int(opt.split(":", 1)[1]))
            except ValueError:
                pass
    return 1


def expand(name: str, search: list[str], n_dots: int) -> list[str]:
    """The absolute names glibc tries for `name`, in order."""
    if name.endswith("."):
        return [name]
    absolute = name + "."
    searched = [f"{name}.{d.rstrip('.')}." for d in search if d and d != "."]
    return [absolute] + searched if name.count(".") >= n_dots else searched + [absolute]


def classify_server(ip: str, params: dict[str, Any]) -> str:
    """loopback / cluster-dns / coredns-endpoint / other."""
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return "loopback"
    except ValueError:
        return "other"
    if ip in (params.get("clusterDns") or []):
        return "cluster-dns"
    if ip in (params.get("corednsEndpoints") or []):
        return "coredns-endpoint"
    return "other"


def _dns():
    try:
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype
    except ImportError as exc:
        raise CannotRun(f"dnspython is not importable ({exc})") from None
    return dns


async def ask(qname: str, rdtype: str, server: str, timeout: float, port: int = 53) -> dict[str, Any]:
    """One UDP query: {"result", "rcode", "answers", "latencyMs", "detail"}.

    dnspython builds and parses the messages; the socket is ours, connected (so an ICMP port
    unreachable surfaces as "unreachable" instead of a timeout) and kernel-timestamped (so
    latencyMs is the server's, not this process's scheduling under load).
    """
    dns = _dns()
    q = dns.message.make_query(qname, rdtype)
    loop = asyncio.get_running_loop()

    def match(data: bytes):
        try:
            r = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException:
            return None
        return r if q.is_response(r) else None

    sent = time.time()
    try:
        with socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            stamp(s)
            s.connect((server, port))
            sent = time.time()
            await loop.sock_sendall(s, q.to_wire())
            got = await recv_match(s, time.monotonic() + timeout, match)
    except OSError as exc:   # ICMP port/host unreachable reported on the connected socket
        w = word(exc)
        why = f"ICMP port unreachable: nothing answers on {server}:{port}" if w == "refused" else describe(exc)
        return {"result": "unreachable" if w in ("refused", "unreachable") else w, "rcode": None, "answers": [],
                "latencyMs": since(sent, time.time()), "detail": why}
    if got is None:
        return {"result": "timeout", "rcode": None, "answers": [], "latencyMs": None,
                "detail": f"no answer within {timeout:.1f}s"}
    r, arrived = got
    rcode = dns.rcode.to_text(r.rcode())
    want_type = dns.rdatatype.from_text(rdtype)
    answers = [rr.to_text() for rrset in r.answer if rrset.rdtype == want_type for rr in rrset]
    result = {"NOERROR": "answer" if answers else "nodata", "NXDOMAIN": "nxdomain", "SERVFAIL": "servfail",
              "REFUSED": "refused"}.get(rcode, "error")
    return {"result": result, "rcode": rcode, "answers": answers, "latencyMs": since(sent, arrived),
            "detail": f"rcode {rcode}" + (" (truncated)" if r.flags & 0x0200 else "")}


def _servers(test: Test, ctx: Context) -> tuple[list[str], dict[str, Any] | None]:
    if test.host == RESOLV:
        conf = ctx.resolv
    elif test.host == NODE_RESOLV:
        conf = ctx.node_resolv
    else:
        return [test.host], None
    if conf is None:
        raise CannotRun(f"no resolv.conf known for this vantage ({test.host})")
    return list(conf.get("nameservers") or []), conf


async def run(test: Test, ctx: Context) -> Result:
    p = test.params
    servers, conf = _servers(test, ctx)
    if not servers:
        return Result(test, "error", None, "resolv.conf lists no nameserver", {"qname": p["qname"]})
    names = expand(p["qname"], list(conf.get("search") or []), ndots(conf)) if (p.get("search") and conf) \
        else [p["qname"] if p["qname"].endswith(".") else p["qname"] + "."]
    tried: list[dict[str, Any]] = []
    final: dict[str, Any] | None = None
    for name in names:
        for server in servers:            # glibc: next server only when this one gives no usable answer
            timeout = ctx.timeout(ctx.cfg.dns_timeout)
            if timeout <= 0:
                break
            got = await ask(name, p.get("rdtype", "A"), server, timeout)
            tried.append({"name": name, "server": server, "serverClass": classify_server(server, p), **got})
            if got["result"] in ("answer", "nxdomain", "nodata"):
                break
        last = tried[-1] if tried else None
        if last and last["result"] == "answer":
            final = last
            break
    if not tried:
        return Result(test, "skipped", None, "global deadline reached", {"qname": p["qname"]})
    if final is None:
        final = _search_outcome(tried)
    result = final["result"]
    want = p.get("want")
    if result == "answer" and want and not set(want) & set(final["answers"]):
        result = "wrong-answer"
    extra = {"qname": p["qname"], "name": final["name"], "server": final["server"],
             "serverClass": final["serverClass"], "rcode": final["rcode"], "answers": final["answers"]}
    if len(tried) > 1 or test.host in (RESOLV, NODE_RESOLV):
        extra["tried"] = [{k: t[k] for k in ("name", "server", "serverClass", "result", "latencyMs")} for t in tried]
    return Result(test, result, final["latencyMs"], final["detail"], extra)


def _search_outcome(tried: list[dict[str, Any]]) -> dict[str, Any]:
    """What glibc reports when no name of the search list answered: a temporary failure if any
    query failed (timeout, SERVFAIL, ...), else NODATA if a name existed, else NXDOMAIN."""
    for group in (TRANSIENT, ("nodata",)):
        hit = next((t for t in tried if t["result"] in group), None)
        if hit:
            return hit
    return tried[-1]


def resolv_summary(conf: dict[str, Any] | None, params: dict[str, Any]) -> dict[str, Any] | None:
    """The vantage's resolv.conf as evidence: what it says, and what each nameserver is."""
    if conf is None:
        return None
    return {**conf, "ndots": ndots(conf),
            "nameserverClasses": {ns: classify_server(ns, params) for ns in conf.get("nameservers") or []}}
