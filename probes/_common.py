"""Helpers every collector shares: running read-only commands, reading host files, building evidence.

Collectors run in three places: on a node itself (host root "/"), in the probe DaemonSet
(the node's filesystem mounted read-only at "/host") and in a lab node's network namespace
(`ip netns exec <ns> ...`). These helpers hide that difference so each collector states
only what it reads and how it parses it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from k8snetdoctor.model import Evidence, clip

DEFAULT_TIMEOUT = 30.0


class CollectError(Exception):
    """A collector could not run; the message is the reason a person reads in the report."""


@dataclass
class CmdResult:
    cmd: str  # as a person would type it, e.g. "ip netns exec n1 iptables-nft-save"
    rc: int
    stdout: str
    stderr: str


def netns_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def display(argv: Sequence[str], netns: str | None = None) -> str:
    return " ".join(netns_prefix(netns) + list(argv))


def have(binary: str) -> bool:
    return shutil.which(binary) is not None


def run(argv: Sequence[str], netns: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> CmdResult:
    """Run a read-only command (inside `netns` when given). Raises CollectError when it cannot start.

    A non-zero exit is returned, not raised: callers decide what it means (iptables-save
    exits 1 on a missing kernel module, which is itself a finding).
    """
    if not have(argv[0]):
        raise CollectError(f"{argv[0]} not found on PATH")
    if netns and not have("ip"):
        raise CollectError("ip (iproute2) not found on PATH; needed for `ip netns exec`")
    full = netns_prefix(netns) + list(argv)
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired as exc:
        raise CollectError(f"{display(argv, netns)} timed out after {timeout:.0f}s") from exc
    except PermissionError as exc:
        raise CollectError(f"{display(argv, netns)}: permission denied") from exc
    return CmdResult(display(argv, netns), proc.returncode, proc.stdout, proc.stderr)


def host_path(host_root: str | os.PathLike[str], path: str) -> Path:
    """`path` as seen on the node, resolved under `host_root` like a chroot would.

    Node files are often symlinks with absolute targets (/etc/resolv.conf ->
    /run/systemd/resolve/stub-resolv.conf). Under /host those targets must be re-rooted,
    or the probe would read its own container's file and report the wrong node fact.
    """
    root = Path(host_root)
    parts = list(PurePosixPath(path).parts[1:] if path.startswith("/") else PurePosixPath(path).parts)
    resolved = PurePosixPath("/")
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            resolved = resolved.parent
            continue
        candidate = resolved / part
        real = root / str(candidate).lstrip("/")
        if real.is_symlink():
            hops += 1
            if hops > 40:
                raise CollectError(f"too many levels of symbolic links resolving {path}")
            target = os.readlink(real)
            if target.startswith("/"):
                resolved = PurePosixPath("/")
            parts = list(PurePosixPath(target).parts[1:] if target.startswith("/")
                         else PurePosixPath(target).parts) + parts
            continue
        resolved = candidate
    return root / str(resolved).lstrip("/")


def node_path(host_root: str | os.PathLike[str], real: Path) -> str:
    """The node-side path of a file read under `host_root` (what a person types on the node)."""
    root = Path(host_root)
    try:
        rel = real.relative_to(root)
    except ValueError:
        return str(real)
    return "/" + str(rel) if str(rel) != "." else "/"


def read_proc(path: str, netns: str | None = None) -> str | None:
    """A /proc file's text as seen from `netns` (or this process); None when it does not exist.

    /proc/net and /proc/sys/net show the network namespace of the reading process, so inside
    a lab namespace the read itself must run there (`ip netns exec <ns> cat ...`).
    """
    if not netns:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise CollectError(f"{path}: permission denied") from exc
    res = run(["cat", path], netns=netns)
    if res.rc == 0:
        return res.stdout
    if "No such file" in res.stderr:
        return None
    raise CollectError(f"{res.cmd} failed (exit {res.rc}): {res.stderr.strip()}")


def evidence(kind: str, node: str | None, source: str, *, data: Any = None, excerpt: str = "",
             error: str | None = None) -> Evidence:
    """A node-vantage Evidence with its excerpt clipped for people."""
    return Evidence(kind=kind, node=node, vantage="node", source=source, data=data,
                    excerpt=clip(excerpt), error=error)
