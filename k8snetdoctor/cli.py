"""The `netdoctor` command line: parsing and wiring only.

Heavy imports (the Kubernetes client, scapy, pyroute2, tabulate) happen inside the commands
that need them, so `netdoctor --help` stays instant. Every expected failure is turned into a
one-line message and an exit code (2 bad input, 3 could not run); tracebacks are for --debug.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .errors import CouldNotRun, NetdoctorError, UsageProblem

FORMATS = ("table", "json", "markdown", "junit")
PLATFORM_CHOICES = ("generic", "ufw", "firewalld", "aws", "k3s", "kubeadm", "kind")


def _output_options(fn):
    fn = click.option("--platform", type=click.Choice(PLATFORM_CHOICES), default=None,
                      help="Fix commands for this platform in the table (falls back to generic); default: generic.")(fn)
    fn = click.option("-v", "--verbose", is_flag=True, help="Also list passing and skipped findings.")(fn)
    fn = click.option("--output-file", type=click.Path(dir_okay=False, writable=True), default=None,
                      help="Write the report to this file instead of standard output.")(fn)
    fn = click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                      help="Report format: table for a person, json/markdown for a ticket, junit for CI.")(fn)
    fn = click.option("--checks", "patterns", multiple=True, metavar="PATTERN",
                      help="Only these rules: an id, a check name (e.g. vxlan) or a glob; repeatable.")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="netdoctor")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find the root cause of Kubernetes network faults and say how to fix them.

    \b
    Typical use:
      netdoctor check --all                 judge this host as a node (root)
      netdoctor probe collect -o ev.json    save this node's evidence
      netdoctor analyze ev.json -o markdown judge saved evidence, e.g. for a ticket

    Exit codes: 0 no failing finding, 1 a failing finding, 2 bad input, 3 could not run.
    """
    ctx.obj = {"debug": debug}


# -- rules ---------------------------------------------------------------------------------------
@cli.command("list")
@click.option("--checks", "patterns", multiple=True, metavar="PATTERN", help="Filter by id, check name or glob.")
def list_rules(patterns: tuple[str, ...]) -> None:
    """List the rules netdoctor judges, with their failure-mode ids."""
    from .registry import select
    from .render_rules import rules_table

    click.echo(rules_table(select(patterns)))


@cli.command("explain")
@click.argument("rule_id")
def explain(rule_id: str) -> None:
    """Print a rule's documentation: what it checks, why, and how its failures are fixed."""
    from .registry import all_rules
    from .render_rules import explain_rule

    rules = {r.id: r for r in all_rules()}
    if rule_id not in rules:
        close = [r for r in rules if rule_id in r] or [r for r in rules if r.startswith(rule_id.split(".")[0])]
        hint = f"; did you mean {', '.join(close[:5])}?" if close else "; `netdoctor list` shows them all"
        raise UsageProblem(f"no rule {rule_id!r}{hint}")
    click.echo(explain_rule(rules[rule_id]))


# -- probe ---------------------------------------------------------------------------------------
@cli.group()
def probe() -> None:
    """The node agent: collect this host's network facts as evidence."""


@probe.command("collect")
@click.option("--host-root", type=click.Path(file_okay=False), default="/", show_default=True,
              help="Where the node's files are mounted (the probe DaemonSet uses /host).")
@click.option("--node-name", default=None, help="Node name to record [default: $NODE_NAME, else the host name].")
@click.option("--only", "kinds", multiple=True, metavar="KIND", help="Only these evidence kinds; repeatable.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, writable=True), default="-",
              show_default=True, help="Write the evidence bundle here (- is standard output).")
def probe_collect(host_root: str, node_name: str | None, kinds: tuple[str, ...], output_file: str) -> None:
    """Collect this node's evidence (iptables, nftables, netlink, sysctls, sockets, CNI, DNS) as JSON.

    Read-only: it never changes the node's network configuration.
    """
    from .probes.collect import ALL_KINDS, collect

    if not Path(host_root).is_dir():
        raise UsageProblem(f"--host-root {host_root}: not a directory")
    unknown = sorted(set(kinds) - set(ALL_KINDS))
    if unknown:
        raise UsageProblem(f"unknown evidence kind {', '.join(unknown)} (known: {', '.join(ALL_KINDS)})")
    bundle = collect(host_root=host_root, node_name=node_name, kinds=list(kinds) or None)
    _write(output_file, bundle.dumps() + "\n")
    failed = [e for e in bundle.evidence if not e.ok]
    click.echo(f"collected {len(bundle.evidence)} evidence items"
               + (f" ({len(failed)} could not be collected; see their 'error')" if failed else ""), err=True)


# -- judging -------------------------------------------------------------------------------------
@cli.command("analyze")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--cluster", "cluster_files", multiple=True, type=click.Path(dir_okay=False),
              help="Cluster inventory as `kubectl get nodes,pods,svc,endpointslices -A -o json` output; repeatable.")
@_output_options
def analyze(files: tuple[str, ...], cluster_files: tuple[str, ...], patterns: tuple[str, ...], fmt: str,
            output_file: str | None, verbose: bool, platform: str | None) -> None:
    """Judge saved evidence bundles offline (one per node, or a merged one)."""
    from .bundle_io import load_bundles
    from .engine import analyze as run_analysis
    from .registry import select

    bundle = load_bundles(files)
    report = run_analysis(bundle, select(patterns), _load_view(cluster_files))
    _emit(report, fmt, output_file, verbose, platform)


@cli.command("check")
@click.option("--all", "all_checks", is_flag=True, help="Run every rule (the default when --checks is not given).")
@click.option("--host-root", type=click.Path(file_okay=False), default="/", show_default=True,
              help="Where this node's files are mounted.")
@click.option("--cluster", "cluster_files", multiple=True, type=click.Path(dir_okay=False),
              help="Cluster inventory as kubectl JSON, to judge cluster-wide rules too; repeatable.")
@click.option("--lab", "lab_name", is_flag=False, flag_value="default", default=None, metavar="[NAME]",
              help="Judge a netns lab (`netdoctor lab up`): every node's probe runs in its namespace, "
                   "the lab's view is the inventory. NAME defaults to \"default\".")
@click.option("--local", is_flag=True, help="Judge this host as a node (implied by --host-root and --cluster).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr (it is off anyway when stderr is not a terminal).")
@_output_options
def check(all_checks: bool, host_root: str, cluster_files: tuple[str, ...], lab_name: str | None, local: bool,
          quiet: bool, patterns: tuple[str, ...], fmt: str, output_file: str | None, verbose: bool, platform: str | None) -> None:
    """Collect and judge in one go.

    \b
    What is judged:
      --lab [NAME]   a netns lab (the built-in test bed)
      --local        this host, as a Kubernetes node (root)
      neither        the lab "default" when it is up and no cluster is configured
    """
    from .engine import run
    from .probes.collect import collect
    from .registry import select

    if all_checks and patterns:
        raise UsageProblem("--all and --checks exclude each other")
    local = local or bool(cluster_files) or host_root != "/"
    if lab_name is not None and local:
        raise UsageProblem("--lab brings its own nodes and inventory: drop --local, --cluster and --host-root")
    rules = select(patterns)
    if lab_name is None and not local:
        lab_name = _default_lab()
    if lab_name is not None:
        from .lab_cli import check_lab_collector

        progress = None if quiet or not sys.stderr.isatty() else _progress_line
        collect_lab, lab_view, target = check_lab_collector(lab_name, progress=progress)
        _emit(run(rules, collect_lab, lab_view, target=target), fmt, output_file, verbose, platform)
    view = _load_view(cluster_files)
    report = run(rules, lambda plan: collect(host_root=host_root, kinds=sorted(plan.kinds)), view,
                 target={"transport": "local", "hostRoot": host_root})
    _emit(report, fmt, output_file, verbose, platform)


def _register_lab() -> None:
    from .lab_cli import lab

    cli.add_command(lab)


_register_lab()


# -- helpers -------------------------------------------------------------------------------------
def _default_lab() -> str:
    """With no target named: the built-in lab when it is up and no cluster is configured."""
    from .lab.state import list_labs

    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    configured = any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p)
    if not configured and "default" in list_labs():
        return "default"
    if configured:
        raise CouldNotRun(f"a cluster is configured ({kubeconfig}) but this version judges live clusters from "
                          "per-node evidence: run `netdoctor check --local` on a node, or `netdoctor probe collect` "
                          "on each node and `netdoctor analyze ... --cluster`")
    raise UsageProblem("no cluster configured and no lab is up: `netdoctor lab up` builds the built-in lab, "
                       "`--lab NAME` names another, `--local` judges this host")


def _progress_line(done: int, total: int) -> None:
    """One self-overwriting stderr line while active tests run."""
    end = "\n" if done >= total else ""
    click.echo(f"\rnetdoctor: active tests {done}/{total}", err=True, nl=False)
    if end:
        click.echo("", err=True)


def _load_view(cluster_files: tuple[str, ...]) -> Any:
    """The inventory from kubectl JSON files, or None when none were given."""
    if not cluster_files:
        return None
    from .cluster.view import ClusterView

    try:
        return ClusterView.from_files(cluster_files)
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"--cluster: {exc}") from None


def _emit(report: Any, fmt: str, output_file: str | None, verbose: bool, platform: str | None) -> NoReturn:
    from .reports import render

    opts: dict[str, Any] = {}
    if fmt == "table":
        to_tty = output_file is None and sys.stdout.isatty()
        opts = {"verbose": verbose, "platform": platform,
                "color": to_tty and "NO_COLOR" not in os.environ,
                "width": _terminal_width() if to_tty else 100}
    text = render(report, fmt, **opts)
    _write(output_file or "-", text if text.endswith("\n") else text + "\n")
    if output_file:
        s = report.summary()
        click.echo(f"wrote {fmt} report to {output_file}: {s['fail']} fail, {s['warn']} warn, "
                   f"{s['pass']} pass, {s['skip']} skip, {s['error']} error", err=True)
    sys.exit(report.exit_code)


def _terminal_width() -> int:
    import shutil

    return max(60, shutil.get_terminal_size((100, 24)).columns)


def _write(path: str, text: str) -> None:
    if path == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot write {path}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of `netdoctor` and `kubectl-netdoctor` (kubectl plugin)."""
    prog = "kubectl netdoctor" if Path(sys.argv[0]).name.startswith("kubectl-") else "netdoctor"
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rc = cli.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NetdoctorError as exc:
        if debug:
            raise
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            raise
        click.echo(f"{prog}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", err=True)
        sys.exit(CouldNotRun.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


__all__ = ["cli", "main"]
