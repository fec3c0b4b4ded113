"""Kernel switches a pod network depends on, read from /proc/sys (never written).

ip_forward=0 silently drops every forwarded pod packet; a missing bridge-nf-call-iptables
file means br_netfilter is not loaded, so Service replies on the same bridge skip conntrack;
strict rp_filter drops asymmetric overlay traffic; a small nf_conntrack_max drops new flows
under load. Values are kept as the kernel prints them (strings), None when the file is absent.
"""
from __future__ import annotations

from k8snetdoctor.model import Evidence

from ._common import CollectError, evidence, read_proc

KIND = "sysctls"

KEYS = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.netfilter.nf_conntrack_max",
)


def key_path(key: str) -> str:
    """`net.ipv4.ip_forward` -> `proc/sys/net/ipv4/ip_forward` (dots in a key are separators)."""
    return "proc/sys/" + key.replace(".", "/")


def _read_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise CollectError(f"{path}: permission denied") from exc


def read_sysctls(host_root: str = "/", netns: str | None = None,
                 keys: tuple[str, ...] = KEYS) -> tuple[dict[str, str | None], str, list[str]]:
    """(values, source, problems). Values missing under host_root fall back to this /proc/sys.

    /proc/sys/net belongs to the network namespace of the reader, so in a hostNetwork probe
    this process's /proc/sys is the node's; the fallback covers a /host mount without /proc.
    Inside a lab namespace the reads run there and host_root is not used (it holds no /proc).
    """
    values: dict[str, str | None] = {}
    problems: list[str] = []
    if netns:
        for key in keys:
            try:
                raw = read_proc("/" + key_path(key), netns=netns)
                values[key] = raw.strip() if raw is not None else None
            except CollectError as exc:
                values[key] = None
                problems.append(f"{key}: {exc}")
        return values, f"ip netns exec {netns} cat /proc/sys/...", problems

    root = host_root.rstrip("/") or ""
    fell_back: list[str] = []
    for key in keys:
        primary = f"{root}/{key_path(key)}"
        try:
            value = _read_file(primary)
            if value is None and root:
                fell_back.append(key)
                value = _read_file("/" + key_path(key))
            values[key] = value
        except CollectError as exc:
            values[key] = None
            problems.append(f"{key}: {exc}")
    source = f"{root}/proc/sys"
    if fell_back:
        source += f" (absent there; read from /proc/sys: {', '.join(fell_back)})"
    return values, source, problems


def collect_sysctls(node: str | None, host_root: str = "/", netns: str | None = None) -> list[Evidence]:
    values, source, problems = read_sysctls(host_root, netns)
    excerpt = "\n".join(f"{k} = {v if v is not None else '(absent)'}" for k, v in values.items())
    if problems:
        excerpt += "\n" + "\n".join(f"# could not read {p}" for p in problems)
    if all(v is None for v in values.values()) and problems:
        return [evidence(KIND, node, source, excerpt=excerpt,
                         error="no sysctl could be read: " + "; ".join(problems))]
    return [evidence(KIND, node, source, data=values, excerpt=excerpt)]
