"""Shared by lab test modules: tear a lab down and prove it left nothing behind."""
from __future__ import annotations

from k8snetdoctor.lab import netns, procs
from k8snetdoctor.lab.lab import Lab, down
from k8snetdoctor.lab.names import Names


def down_and_check(name: str) -> None:
    """`lab down`, then assert no namespace and no recorded process (fault-started ones too) remains."""
    try:
        recorded = list(Lab.load(name).state.processes)
    except (FileNotFoundError, ValueError):
        recorded = []
    res = down(name)
    left = sorted(n for n in netns.list_netns() if Names(name).owns(n))
    alive = [f"{r.name} (pid {r.pid})" for r in recorded if procs.alive(r)]
    assert not left and not res["namespacesLeft"], f"namespaces left by lab {name}: {left}"
    assert not alive, f"processes left by lab {name}: {alive}"
