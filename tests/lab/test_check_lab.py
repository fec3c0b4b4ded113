"""The whole engine against the lab: healthy means no failing finding, and every config fault of
the catalogue is found by the rule it names, on its node, as the root cause — then cleared.

One 3-node lab for the module; faults are applied and cleared, never rebuilt. The lab CLI
(`netdoctor lab fault/clear/status`, `netdoctor check --lab`) is driven as a user would, in a
subprocess, against the same lab.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Iterator

import pytest

from labkit import down_and_check

from k8snetdoctor.engine import analyze
from k8snetdoctor.errors import UsageProblem
from k8snetdoctor.lab import faults, netns
from k8snetdoctor.model import Finding, Report
from k8snetdoctor.registry import all_rules
from k8snetdoctor.transport.netns import collect_lab

pytestmark = pytest.mark.root

CONFIG_FAULTS = [f for f in faults.CATALOGUE if f.kind == "config"]
# The lab group is registered in cli.py by the lead; registering it here too keeps this test
# independent of that (add_command is skipped when `lab` is already there).
CLI = ("import sys; from k8snetdoctor.cli import cli, main; from k8snetdoctor.lab_cli import lab; "
       "'lab' in cli.commands or cli.add_command(lab); main(sys.argv[1:])")


def own_lab(name: str, nodes: int = 3) -> Iterator:
    """A lab for one test module: always torn down, and nothing of it may survive."""
    from k8snetdoctor.lab.lab import down, up

    try:
        built = up(name, nodes=nodes)
    except BaseException:
        down(name)
        raise
    try:
        yield built
    finally:
        down_and_check(name)


def netdoctor(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=timeout)


def judge(lab) -> Report:
    return analyze(collect_lab(lab), all_rules())


def shown(findings: list[Finding]) -> str:
    return "\n".join(f"  {f.status} {f.key} root={f.rootCause} causedBy={f.causedBy}: {f.message}"
                     for f in findings) or "  (none)"


def in_scope(f: Finding, node: str, peer: str | None) -> bool:
    if f.scope.nodePairs and peer:
        return [node, peer] in f.scope.nodePairs
    return node in f.scope.nodes or any(node in pair for pair in f.scope.nodePairs)


@pytest.fixture(scope="module")
def lab(lab_run_id):
    yield from own_lab(lab_run_id + "k")


@pytest.fixture(scope="module")
def healthy_report(lab) -> Report:
    return judge(lab)


def test_healthy_lab_has_no_failing_finding(lab, healthy_report):
    problems = [f for f in healthy_report.findings if f.status != "pass"]
    assert not [f for f in problems if f.status in ("fail", "error")], \
        "the healthy lab must pass; non-pass findings:\n" + shown(problems)
    judged = {f.id for f in healthy_report.findings if f.status == "pass"}
    assert {r for f in CONFIG_FAULTS for r in f.rules} <= judged, "a fault's rule never passes on the healthy lab"


def test_bundle_has_every_node_and_the_lab_view(lab):
    bundle = collect_lab(lab, kinds=["links", "sysctls"])
    assert sorted({e.node for e in bundle.evidence}) == lab.spec.node_names
    assert {e.kind for e in bundle.evidence} == {"links", "sysctls"} and all(e.ok for e in bundle.evidence)
    assert bundle.cluster["source"] == f"lab:{lab.name}" and len(bundle.cluster["nodes"]) == 3
    assert all(e.source.startswith(("ip netns exec ndlab-", "in netns ndlab-", "netlink")) for e in bundle.evidence)
    assert [e.node for e in collect_lab(lab, kinds=["links"], workers=1).evidence] == lab.spec.node_names


@pytest.mark.parametrize("fault", CONFIG_FAULTS, ids=lambda f: f.name)
def test_config_fault_is_found_as_root_cause_and_clears(lab, fault):
    record = faults.apply(lab, fault.name)
    node, peer = record["node"], record["peer"]
    try:
        report = judge(lab)
        by_key = report.by_key()
        failing = [f for f in report.findings if f.status == "fail"]
        for rule in fault.rules:
            hits = [f for f in failing if f.id == rule and in_scope(f, node, peer)]
            assert hits, f"{fault.name} on {node}/{peer}: {rule} did not fail there; problems:\n" + \
                shown([f for f in report.findings if f.problem])
            for f in hits:
                explained = any(by_key[c].id in fault.rules and by_key[c].rootCause for c in f.causedBy)
                assert f.rootCause or explained, f"{fault.name}: {f.key} is not the root cause:\n" + shown(failing)
        assert not [f for f in report.findings if f.status == "error"], shown(report.findings)
    finally:
        faults.clear(lab, fault.name)
    after = judge(lab)
    assert not [f for f in after.findings if f.status in ("fail", "error")], \
        f"{fault.name} cleared, yet:\n" + shown([f for f in after.findings if f.problem])
    for rule in fault.rules:     # judged again, and passing (cluster-wide when nothing is left in scope)
        mine = [f for f in after.findings if f.id == rule]
        assert mine and all(f.status == "pass" for f in mine), shown(mine)
    assert lab.faults() == [] and lab.status()["healthy"]


def test_faults_compose_and_clear_all(lab):
    """Two faults on one node's iptables and one in the view, then `clear` with no name."""
    baseline = netns.iptables_save(lab.node_ns("node-1"))
    faults.apply(lab, "nodeport-rules-missing")
    faults.apply(lab, "kubelet-exposed")
    faults.apply(lab, "kube-proxy-stale", node="node-2")
    assert [r["name"] for r in lab.faults()] == ["nodeport-rules-missing", "kubelet-exposed", "kube-proxy-stale"]
    assert "late-nodeport" in {s["metadata"]["name"] for s in lab.view().services}
    report = judge(lab)
    failing = {(f.id, tuple(f.scope.nodes)) for f in report.findings if f.status == "fail"}
    assert failing == {("nodeport.rules", ("node-1",)), ("nodeport.rules", ("node-2",))}, shown(report.findings)
    with pytest.raises(UsageProblem, match="already active"):
        faults.apply(lab, "kubelet-exposed")
    assert sorted(faults.clear(lab)) == ["kube-proxy-stale", "kubelet-exposed", "nodeport-rules-missing"]
    assert "late-nodeport" not in {s["metadata"]["name"] for s in lab.view().services}
    strip = lambda t: [re.sub(r"\[\d+:\d+\]", "", ln) for ln in t.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert strip(netns.iptables_save(lab.node_ns("node-1"))) == strip(baseline)


# -- the CLI, as a user drives it -----------------------------------------------------------------
def test_check_lab_cli_exit_codes_and_json(lab):
    from k8snetdoctor.reports.validate import validate_report

    faults.apply(lab, "ip-forward-off", node="node-2")
    try:
        bad = netdoctor("check", "--all", "--lab", lab.name, "-o", "json")
    finally:
        faults.clear(lab)
    good = netdoctor("check", "--all", "--lab", lab.name, "-o", "json")
    assert (bad.returncode, good.returncode) == (1, 0), (bad.stderr, good.stderr)
    for res in (bad, good):
        doc = json.loads(res.stdout)
        validate_report(doc)
        assert doc["target"]["transport"] == "netns" and doc["target"]["lab"] == lab.name
    failing = [f for f in json.loads(bad.stdout)["findings"] if f["status"] == "fail"]
    # `check --lab` runs the active tests too: forwarding off breaks node-2's pod paths, and those
    # symptoms fail under the one root cause
    assert [f["key"] for f in failing if f["rootCause"]] == ["sysctl.ip-forward@node-2"]
    assert all(f["causedBy"] for f in failing if not f["rootCause"])


def test_lab_cli_fault_status_clear_round_trip(lab):
    res = netdoctor("lab", "fault", "fdb-stale", "--node", "node-2", "--peer", "node-0", "--name", lab.name)
    assert res.returncode == 0 and "applied fdb-stale on node-2 <-> node-0" in res.stdout, res.stderr
    st = json.loads(netdoctor("lab", "status", "--name", lab.name, "-o", "json").stdout)
    assert [(f["name"], f["node"], f["peer"]) for f in st["faults"]] == [("fdb-stale", "node-2", "node-0")]
    assert lab.faults()[0]["data"]["oldMAC"]                      # visible to this process too
    table = netdoctor("lab", "status", "--name", lab.name).stdout
    assert "active faults:" in table and "fdb-stale" in table and "node-1" in table
    res = netdoctor("lab", "clear", "--name", lab.name)
    assert res.returncode == 0 and "cleared fdb-stale" in res.stdout, res.stderr
    assert json.loads(netdoctor("lab", "status", "--name", lab.name, "-o", "json").stdout)["faults"] == []
    assert not [f for f in judge(lab).findings if f.status == "fail"]


@pytest.mark.parametrize("args,message", [
    (("lab", "fault", "no-such-fault"), "no fault 'no-such-fault'"),
    (("lab", "fault", "ip-forward-off", "--node", "node-9"), "no node 'node-9'"),
    (("lab", "fault", "vxlan-blocked", "--node", "node-1", "--peer", "node-1"), "--peer must be"),
    (("lab", "fault", "ip-forward-off", "--peer", "node-2"), "takes no --peer"),
    (("lab", "clear", "no-such-fault"), "no fault 'no-such-fault'"),
    (("lab", "status", "--name", "nosuchlab"), "no lab named 'nosuchlab'"),
    (("check", "--all", "--lab", "nosuchlab"), "no lab named 'nosuchlab'"),
])
def test_lab_cli_usage_errors_are_one_line_exit_2(lab, args, message):
    full = list(args) + ([] if "--name" in args or "--lab" in args else ["--name", lab.name])
    res = netdoctor(*full)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr, res.stderr
    assert lab.faults() == []
