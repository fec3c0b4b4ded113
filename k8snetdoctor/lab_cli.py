"""`netdoctor lab ...`: bring a netns lab up, break it on purpose, look at it, tear it down.

Parsing and wiring only: the lab is k8snetdoctor/lab/, the faults lab/faults.py. Lab errors
become one-line messages with the CLI's exit codes (2 for a wrong name, fault or node; 3 when
the lab cannot be acted on, e.g. not root), like every other netdoctor command.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from .errors import CouldNotRun, UsageProblem

if TYPE_CHECKING:  # pragma: no cover
    from .cluster.view import ClusterView
    from .engine import Plan
    from .lab.lab import Lab
    from .model import EvidenceBundle

DEFAULT = "default"
_name_option = click.option("--name", default=DEFAULT, show_default=True, help="Which lab.")


@contextmanager
def _lab_errors() -> Iterator[None]:
    """The lab's own exceptions, as the CLI's one-line errors."""
    from .lab.netns import LabError

    try:
        yield
    except LabError as exc:
        raise CouldNotRun(str(exc)) from None
    except (ValueError, KeyError) as exc:
        raise UsageProblem(str(exc.args[0]) if exc.args else str(exc)) from None


def _need_root() -> None:
    if os.geteuid() != 0:
        raise CouldNotRun("the lab needs root: it creates network namespaces and iptables rules (run with sudo)")


def load(name: str) -> "Lab":
    """An existing lab, or a UsageProblem saying how to make one."""
    from .lab.lab import Lab
    from .lab.state import LabState

    _need_root()
    with _lab_errors():
        if not LabState.exists(name):
            raise UsageProblem(f"no lab named {name!r} (create it with `netdoctor lab up --name {name}`)")
        return Lab.load(name)


Collector = Callable[["Plan"], "EvidenceBundle"]


def check_lab_collector(name: str = DEFAULT, progress: Callable[[int, int], None] | None = None
                        ) -> tuple[Collector, "ClusterView", dict[str, Any]]:
    """What `netdoctor check --lab NAME` needs: (collect(plan), the lab's view, the report target)."""
    from .transport.netns import collect_lab

    lab = load(name)
    view = lab.view()

    def collect(plan: "Plan") -> "EvidenceBundle":
        with _lab_errors():
            return collect_lab(lab, kinds=sorted(plan.kinds), progress=progress)

    target = {"transport": "netns", "lab": name, "nodes": lab.spec.node_names,
              "faults": [f["name"] for f in lab.faults()]}
    return collect, view, target


@click.group("lab")
def lab() -> None:
    """A Kubernetes dataplane in network namespaces, to learn on and to reproduce faults (root).

    \b
      netdoctor lab up --nodes 3          build lab "default"
      netdoctor lab fault vxlan-blocked   break it (netdoctor lab faults lists how)
      netdoctor check --all --lab         diagnose it
      netdoctor lab clear; netdoctor lab down
    """


@lab.command("up")
@click.option("--nodes", type=click.IntRange(2, 200), default=3, show_default=True, help="Node count.")
@_name_option
def up_cmd(nodes: int, name: str) -> None:
    """Build a lab: nodes, pods, flannel VXLAN, kube-proxy rules, DNS, a security group."""
    from .lab.lab import up

    _need_root()
    with _lab_errors():
        from .lab.state import LabState

        if LabState.exists(name):
            raise UsageProblem(f"a lab named {name!r} already exists; `netdoctor lab down --name {name}` first")
        built = up(name, nodes=nodes)
    st = built.status()
    click.echo(f"lab {name} is up: {nodes} nodes, {st['namespaces']} namespaces, {len(st['processes'])} processes")
    for w in st["warnings"]:
        click.echo(f"warning: {w}", err=True)


@lab.command("status")
@_name_option
@click.option("-o", "--output", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def status_cmd(name: str, fmt: str) -> None:
    """Namespaces, addresses, processes and active faults of a lab."""
    the_lab = load(name)
    with _lab_errors():
        st = the_lab.status()
    if fmt == "json":
        click.echo(json.dumps(st, indent=1))
        return
    from tabulate import tabulate

    alive = sum(p["alive"] for p in st["processes"])
    click.echo(f"lab {st['name']}: {st['state']}{'' if st['healthy'] else ' (NOT healthy)'}; "
               f"{st['namespaces']} namespaces, {alive}/{len(st['processes'])} processes alive")
    if st["missingNamespaces"]:
        click.echo(f"missing namespaces: {', '.join(st['missingNamespaces'])}")
    rows = [(n["name"], n["role"], n["ip"], n["podCIDR"], n["netns"]) for n in st["nodes"]]
    rows += [(p["name"], f"pod on {p['node']}", p["ip"], "", p["netns"]) for p in st["pods"]]
    rows.append(("external", "internet", st["external"]["ip"], "", st["external"]["netns"]))
    click.echo(tabulate(rows, headers=("NAME", "ROLE", "ADDRESS", "POD CIDR", "NETNS"), tablefmt="plain"))
    if st["faults"]:
        click.echo("\nactive faults:")
        click.echo(tabulate([(f["name"], f["node"] or "", f["peer"] or "", f["appliedAt"]) for f in st["faults"]],
                            headers=("FAULT", "NODE", "PEER", "SINCE"), tablefmt="plain"))
    else:
        click.echo("\nno active faults")
    for w in st["warnings"]:
        click.echo(f"warning: {w}")


@lab.command("faults")
@click.option("-o", "--output", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def faults_cmd(fmt: str) -> None:
    """The fault catalogue: name, kind (config: rules judge it now; behaviour: needs probing), FM ids."""
    from .lab.faults import CATALOGUE

    if fmt == "json":
        click.echo(json.dumps([{"name": f.name, "kind": f.kind, "failureModes": list(f.fm), "rules": list(f.rules),
                                "description": f.description} for f in CATALOGUE], indent=1))
        return
    width = max(len(f.name) for f in CATALOGUE)
    for f in CATALOGUE:
        click.echo(f"{f.name:<{width}}  {f.kind:<9}  {','.join(f.fm):<11}  {f.description}")


@lab.command("fault")
@click.argument("fault")
@click.option("--node", default=None, help="The node to break [default: the fault's usual one, e.g. the first worker].")
@click.option("--peer", default=None, help="The second node, for faults between two nodes.")
@_name_option
def fault_cmd(fault: str, node: str | None, peer: str | None, name: str) -> None:
    """Apply a fault from the catalogue (`netdoctor lab faults`); `lab clear` undoes it."""
    from .lab import faults

    faults.get(fault)                # an unknown fault is a usage error even before the lab is looked up
    the_lab = load(name)
    with _lab_errors():
        rec = faults.apply(the_lab, fault, node=node, peer=peer)
    where = " <-> ".join(x for x in (rec["node"], rec["peer"]) if x)
    click.echo(f"applied {fault}" + (f" on {where}" if where else "") + f" in lab {name}")


@lab.command("clear")
@click.argument("fault", required=False)
@_name_option
def clear_cmd(fault: str | None, name: str) -> None:
    """Undo one active fault, or all of them."""
    from .lab import faults

    if fault:
        faults.get(fault)
    the_lab = load(name)
    with _lab_errors():
        done = faults.clear(the_lab, fault)
    if done:
        click.echo(f"cleared {', '.join(done)} in lab {name}")
    else:
        click.echo(f"{fault + ' is' if fault else 'no fault is'} not active in lab {name}")


@lab.command("down")
@_name_option
def down_cmd(name: str) -> None:
    """Remove the lab: its processes, namespaces and files (only what its `up` recorded)."""
    from .lab.lab import down

    _need_root()
    with _lab_errors():
        res = down(name)
    if res.get("note") == "no such lab":
        raise UsageProblem(f"no lab named {name!r}")
    click.echo(f"lab {name} is down: {res['namespacesDeleted']} namespaces, "
               f"{res['processesStopped']} processes removed")
    if res["namespacesLeft"] or res["processesStuck"]:
        raise CouldNotRun(f"left behind: namespaces {res['namespacesLeft']}, processes {res['processesStuck']}")


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@_name_option
def exec_cmd(target: str, argv: tuple[str, ...], name: str) -> None:
    """Run a command in a node's or pod's namespace: netdoctor lab exec node-1 -- ip route."""
    the_lab = load(name)
    with _lab_errors():
        ns = the_lab.resolve_ns(target)
    try:
        rc = subprocess.call(["ip", "netns", "exec", ns, *argv])
    except OSError as exc:
        raise CouldNotRun(f"cannot run {argv[0]}: {exc}") from None
    sys.exit(rc)


__all__ = ["lab", "check_lab_collector", "load"]
