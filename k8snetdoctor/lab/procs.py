"""Long-running lab processes (dnsmasq, echo servers): start in a namespace, wait, stop.

Processes are detached (own session, no terminal) so they outlive `netdoctor lab up`, and
each is identified by PID *and* start time so `down` never signals a recycled PID.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable, Sequence

from k8snetdoctor.lab.netns import LabError, netns_inode, pids_in
from k8snetdoctor.lab.state import LabState, ProcRecord

_TCP_LISTEN, _UDP_UNCONN = "0A", "07"


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot); None if gone or a zombie.

    A main thread that already exited while other threads still run (and still hold the
    process's listening sockets) shows as a zombie too: that process is not gone yet.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        fields = raw.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and len(os.listdir(f"/proc/{pid}/task")) <= 1:
            return None
    except OSError:
        return None
    return int(fields[19])


def alive(rec: ProcRecord) -> bool:
    st = start_time(rec.pid)
    return st is not None and (rec.start_time is None or st == rec.start_time)


def start(state: LabState, ns: str, role: str, name: str, argv: Sequence[str], ports: Sequence[str],
          log_dir: Path) -> ProcRecord:
    """Start argv inside `ns`, recorded before (pid 0: intent) and right after (pid) it starts.

    The intent record closes the gap a crash between fork and write would leave: `down` finds
    such a process by its exact command line inside the recorded namespace (see strays()).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    rec = ProcRecord(pid=0, start_time=None, ns=ns, role=role, name=name, argv=list(argv),
                     ports=list(ports), log=str(log))
    state.add_process(rec)
    with open(log, "ab") as fh:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL, stdout=fh,
                             stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    _children[p.pid] = p
    rec.pid, rec.start_time = p.pid, start_time(p.pid)
    state.save()
    return rec


def strays(state: LabState) -> list[ProcRecord]:
    """Live processes in the lab's namespaces whose command line is one the lab launched.

    Only a crash between starting a process and recording its PID leaves one; matching the
    exact recorded argv (before or after `ip netns exec` exec'd it) keeps anything else safe.
    """
    known = {r.pid for r in state.processes}
    wanted = {}
    for r in state.processes:
        wanted[(r.ns, tuple(r.argv))] = r
        wanted[(r.ns, ("ip", "netns", "exec", r.ns, *r.argv))] = r
    out = []
    for ns in {r.ns for r in state.processes}:
        for pid in pids_in(ns):
            if pid in known:
                continue
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            r = wanted.get((ns, tuple(raw.split("\0")[:-1])))
            if r is not None:
                out.append(ProcRecord(pid=pid, start_time=start_time(pid), ns=ns, role=r.role, name=r.name,
                                      argv=r.argv, ports=r.ports, log=r.log))
    return out


# Popen objects of processes this Python process started, so stop() can reap them.
_children: dict[int, subprocess.Popen] = {}


def _listening(rec: ProcRecord) -> bool:
    """True once every port in rec.ports is bound inside the process's own namespace.

    /proc/<pid>/net/* shows the namespace the process is in; until `ip netns exec` has switched
    it that is the host's, so the namespace inode is checked first.
    """
    try:
        if os.stat(f"/proc/{rec.pid}/ns/net").st_ino != netns_inode(rec.ns):
            return False
        for spec in rec.ports:
            proto, port = spec.split(":")
            table = Path(f"/proc/{rec.pid}/net/{proto}").read_text().splitlines()[1:]
            want = _TCP_LISTEN if proto == "tcp" else _UDP_UNCONN
            hexport = f"{int(port):04X}"
            if not any(line.split()[1].endswith(":" + hexport) and line.split()[3] == want for line in table):
                return False
        return True
    except OSError:
        return False


def wait_ready(recs: Iterable[ProcRecord], timeout: float = 20.0) -> None:
    pending = list(recs)
    deadline = time.monotonic() + timeout
    while pending:
        for rec in list(pending):
            if _listening(rec):
                pending.remove(rec)
            elif not alive(rec):
                raise LabError(f"{rec.role} {rec.name} (pid {rec.pid}) in {rec.ns} exited at start; "
                               f"its log {rec.log} says: {_tail(rec.log)}")
        if pending and time.monotonic() > deadline:
            names = ", ".join(f"{r.name} ({','.join(r.ports)})" for r in pending)
            raise LabError(f"not listening after {timeout:.0f}s: {names}")
        if pending:
            time.sleep(0.02)


def _tail(path: str, n: int = 400) -> str:
    try:
        return Path(path).read_text(errors="replace")[-n:].strip() or "(empty)"
    except OSError:
        return "(no log)"


def stop(recs: Iterable[ProcRecord], grace: float = 3.0) -> list[ProcRecord]:
    """SIGTERM, then SIGKILL after `grace`, exactly the recorded processes still alive.

    Returns the records that could not be stopped (normally none).
    """
    live = [r for r in recs if alive(r)]
    for r in live:
        _signal(r, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive_reaped(r) for r in live):
        time.sleep(0.02)
    for r in live:
        if _alive_reaped(r):
            _signal(r, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(_alive_reaped(r) for r in live):
        time.sleep(0.02)
    return [r for r in live if _alive_reaped(r)]


def _signal(rec: ProcRecord, sig: int) -> None:
    if rec.pid <= 0:    # never a process group
        return
    try:
        os.kill(rec.pid, sig)
    except ProcessLookupError:
        pass


def _alive_reaped(rec: ProcRecord) -> bool:
    p = _children.get(rec.pid)
    if p is not None and p.poll() is not None:
        _children.pop(rec.pid, None)
    return alive(rec)
