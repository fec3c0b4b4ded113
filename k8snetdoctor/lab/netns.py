"""Thin wrappers that run `ip`, `bridge`, `iptables-restore` and friends in a namespace.

Failures raise LabCommandError naming the namespace, the command and what it printed, so a
broken `lab up` says which step failed instead of leaving a half-built lab and a traceback.
`in_netns` runs Python code with a thread inside a namespace, which the lab's own traffic
helpers use to open sockets there without starting a process.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Callable, Sequence, TypeVar

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


def _nft_first(name: str) -> str:
    """The nf_tables flavour when installed: the lab's rules go where a current kube-proxy's go."""
    nft = name.replace("iptables", "iptables-nft", 1)
    return nft if shutil.which(nft) else name


IPTABLES, IPTABLES_SAVE, IPTABLES_RESTORE = map(_nft_first, ("iptables", "iptables-save", "iptables-restore"))
T = TypeVar("T")


class LabError(RuntimeError):
    """Something the lab could not do; the message says what and where."""


class LabCommandError(LabError):
    def __init__(self, argv: Sequence[str], ns: str | None, rc: int | None, output: str, stdin: str | None = None):
        self.argv, self.ns, self.rc, self.output = list(argv), ns, rc, output
        where = f"in netns {ns}: " if ns else ""
        shown = " ".join(argv)
        detail = output.strip() or "(no output)"
        first_bad = _failed_batch_line(output, stdin)
        super().__init__(f"{where}`{shown}` failed (exit {rc}): {detail}{first_bad}")


def _failed_batch_line(output: str, stdin: str | None) -> str:
    """`ip -batch` says "Command failed -:7"; show line 7 so the error is readable alone."""
    if not stdin or "Command failed -:" not in output:
        return ""
    try:
        n = int(output.rsplit("Command failed -:", 1)[1].split()[0])
        return f"\n  batch line {n}: {stdin.splitlines()[n - 1]}"
    except (ValueError, IndexError):
        return ""


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(f"the lab needs {', '.join(missing)} on PATH (Debian: apt-get install iproute2 "
                       "iptables dnsmasq-base)")


def run(argv: Sequence[str], *, ns: str | None = None, input: str | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """Run argv (inside `ns` through `ip netns exec` when given); raise LabCommandError on failure."""
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    try:
        cp = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabCommandError(argv, ns, None, f"timed out after {timeout}s") from exc
    except FileNotFoundError as exc:
        raise LabError(f"{full[0]} not found: {exc}") from exc
    if check and cp.returncode != 0:
        raise LabCommandError(argv, ns, cp.returncode, (cp.stderr or "") + (cp.stdout or ""), input)
    return cp


def ip_batch(ns: str | None, lines: Sequence[str], *, force: bool = False) -> None:
    """Many `ip` commands in one process (`ip -n ns -batch -`), the lab's main speed trick."""
    if not lines:
        return
    argv = ["ip"] + (["-n", ns] if ns else []) + (["-force"] if force else []) + ["-batch", "-"]
    _batch(argv, ns, lines, force)


def bridge_batch(ns: str, lines: Sequence[str], *, force: bool = False) -> None:
    if not lines:
        return
    argv = ["bridge", "-n", ns] + (["-force"] if force else []) + ["-batch", "-"]
    _batch(argv, ns, lines, force)


def _batch(argv: list[str], ns: str | None, lines: Sequence[str], force: bool) -> None:
    text = "\n".join(lines) + "\n"
    cp = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60)
    if cp.returncode != 0 and not force:
        raise LabCommandError(argv, ns, cp.returncode, cp.stderr + cp.stdout, text)


def iptables_restore(ns: str, text: str, *, test: bool = False, noflush: bool = False,
                     binary: str = IPTABLES_RESTORE) -> None:
    """Load (or with test=True only parse-check) iptables-restore text in `ns`."""
    argv = [binary, "-w"] + (["--test"] if test else []) + (["--noflush"] if noflush else [])
    run(argv, ns=ns, input=text)


def iptables_save(ns: str, *, binary: str = IPTABLES_SAVE, table: str | None = None) -> str:
    return run([binary] + (["-t", table] if table else []), ns=ns).stdout


def iptables(ns: str, *args: str, binary: str = IPTABLES) -> None:
    """One iptables command, e.g. iptables(ns, "-I", "LAB-SG", "1", "-s", ip, "-j", "DROP")."""
    run([binary, "-w", *args], ns=ns)


def sysctl(ns: str, values: dict[str, str | int]) -> None:
    run(["sysctl", "-q", "-w", *[f"{k}={v}" for k, v in values.items()]], ns=ns)


def read_sysctl(ns: str, key: str) -> str:
    return run(["sysctl", "-n", key], ns=ns).stdout.strip()


# -- namespaces ---------------------------------------------------------------------------
def list_netns() -> set[str]:
    try:
        return {p.name for p in NETNS_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def add_netns(names: Sequence[str]) -> None:
    ip_batch(None, [f"netns add {n}" for n in names])


def delete_netns(names: Sequence[str]) -> list[str]:
    """Delete the namespaces that exist; return the ones still present afterwards."""
    present = list_netns()
    gone = [n for n in names if n in present]
    ip_batch(None, [f"netns del {n}" for n in gone], force=True)
    left = list_netns()
    return [n for n in names if n in left]


def netns_inode(ns: str) -> int | None:
    try:
        return os.stat(NETNS_DIR / ns).st_ino
    except FileNotFoundError:
        return None


def pids_in(ns: str) -> list[int]:
    """Processes whose network namespace is `ns` (what `ip netns pids` prints)."""
    ino = netns_inode(ns)
    if ino is None:
        return []
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.stat(d / "ns" / "net").st_ino == ino:
                    out.append(int(d.name))
            except OSError:
                continue
    return sorted(out)


# -- Python inside a namespace -----------------------------------------------------------
_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError(f"setns failed: {os.strerror(err)}")


def in_netns(ns: str, fn: Callable[[], T], timeout: float = 60) -> T:
    """Run fn() on a fresh thread that has joined `ns`; sockets it opens stay in `ns`.

    A thread of its own means the caller's thread never changes namespace, so nothing else in
    the process is affected and there is nothing to restore if fn raises.
    """
    path = NETNS_DIR / ns
    if not path.exists():
        raise LabError(f"network namespace {ns} does not exist")
    box: dict[str, object] = {}

    def target() -> None:
        try:
            with open(path) as fh:
                _setns(fh.fileno())
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    t = threading.Thread(target=target, name=f"netns:{ns}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise LabError(f"code inside netns {ns} did not finish within {timeout}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
