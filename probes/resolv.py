"""The node's /etc/resolv.conf: what kubelet hands to dnsPolicy=Default pods and CoreDNS forwards to.

A node whose resolv.conf names the systemd-resolved stub (127.0.0.53) makes CoreDNS forward
to itself (a loop: CoreDNS crashes with "Loop ... detected"); too many search domains or an
unreachable nameserver break pod DNS in ways that look like cluster DNS faults. The file is
often a symlink with an absolute target, resolved under the host root, not the probe's own.
"""
from __future__ import annotations

from k8snetdoctor.model import Evidence

from ._common import CollectError, evidence, host_path, node_path

KIND = "resolv"
PATH = "/etc/resolv.conf"


def parse_resolv(text: str) -> dict:
    """nameservers in order, search list (the last `search`/`domain` line wins, as in glibc), options."""
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        word, *rest = line.split()
        if word == "nameserver" and rest:
            nameservers.append(rest[0])
        elif word == "search":
            search = list(rest)
        elif word == "domain" and rest:
            search = [rest[0]]
        elif word == "options":
            options.extend(rest)
    return {"nameservers": nameservers, "search": search, "options": options}


def collect_resolv(node: str | None, host_root: str = "/", path: str = PATH) -> list[Evidence]:
    shown = f"{host_root.rstrip('/')}{path}"
    try:
        real = host_path(host_root, path)
        text = real.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        try:
            target = node_path(host_root, host_path(host_root, path))
        except CollectError:
            target = path
        if target != path:  # e.g. -> /run/systemd/resolve/stub-resolv.conf with /run not mounted
            return [evidence(KIND, node, shown, error=f"{shown} is a symlink to {target}, which is absent"
                             + (f" under {host_root}" if host_root.rstrip("/") else ""))]
        return [evidence(KIND, node, shown, error=f"{shown} is absent (glibc then uses 127.0.0.1)")]
    except PermissionError:
        return [evidence(KIND, node, shown, error=f"{shown}: permission denied")]
    except (OSError, CollectError) as exc:
        return [evidence(KIND, node, shown, error=f"{shown}: {exc}")]
    target = node_path(host_root, real)
    source = shown + (f" -> {target}" if target != path else "")
    data = {"path": path, **parse_resolv(text)}
    return [evidence(KIND, node, source, data=data, excerpt=text)]
