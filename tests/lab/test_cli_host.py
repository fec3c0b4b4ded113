"""The node agent on this very host, end to end through the command line (root)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from k8snetdoctor.reports.validate import validate_bundle, validate_report

pytestmark = pytest.mark.root


def netdoctor(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "k8snetdoctor", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_probe_collect_then_analyze_gives_a_valid_json_report(tmp_path):
    col = netdoctor("probe", "collect", "-o", "ev.json", cwd=tmp_path)
    assert col.returncode == 0, col.stderr
    bundle = json.loads((tmp_path / "ev.json").read_text())
    validate_bundle(bundle)
    kinds = {e["kind"] for e in bundle["evidence"]}
    assert {"iptables-save", "links", "routes", "sysctls", "sockets", "cni", "resolv", "host"} <= kinds
    ana = netdoctor("analyze", "ev.json", "-o", "json", cwd=tmp_path)
    assert ana.returncode in (0, 1), ana.stderr
    report = json.loads(ana.stdout)
    validate_report(report)
    # this host's own sysctls were judged from what was collected, not assumed
    fwd = next(f for f in report["findings"] if f["id"] == "sysctl.ip-forward")
    actual = open("/proc/sys/net/ipv4/ip_forward").read().strip()
    assert fwd["status"] == ("pass" if actual == "1" else "fail")
    assert report["summary"]["exitCode"] == ana.returncode


def test_check_all_on_this_host_renders_each_format(tmp_path):
    for fmt in ("table", "markdown", "junit"):
        res = netdoctor("check", "--all", "--local", "-o", fmt, cwd=tmp_path)
        assert res.returncode in (0, 1), res.stderr
        assert "Traceback" not in res.stderr
        assert res.stdout.strip()


def test_readme_demo_diagnoses_the_injected_fault_and_leaves_nothing_behind():
    root = Path(__file__).resolve().parents[2]
    if not (root / ".venv" / "bin" / "netdoctor").exists():
        pytest.skip("scripts/demo.sh runs .venv/bin/netdoctor: run ./scripts/setup.sh first")
    name = "demo" + secrets.token_hex(2)
    res = subprocess.run(["./scripts/demo.sh"], cwd=root, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "LAB_NAME": name, "FAULT": "ip-forward-off"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "sysctl.ip-forward" in res.stdout and "FAIL" in res.stdout
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"ndlab-{name}-" not in left
