"""Packaging, CI and README promises that are easy to break without noticing."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_test_command_written_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    main_job, test_cmd = blocks[0].strip(), blocks[1].strip()
    assert main_job == "./scripts/setup.sh && ./scripts/demo.sh"
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert "check --all --lab" in demo and "lab fault" in demo and "lab down" in demo
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines(), "README's test command must be what .ci/run runs"
    assert 'rc" = 5' in ci, "pytest's exit 5 (no tests collected) must fail CI"


def test_help_imports_neither_kubernetes_nor_scapy():
    code = (
        "import sys\n"
        "from k8snetdoctor.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('kubernetes', 'scapy', 'pyroute2', 'tabulate') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd="/")


def test_wheel_maps_top_level_folders_into_the_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("k8snetdoctor-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
    assert tops == {"k8snetdoctor"}, f"only k8snetdoctor may land in site-packages, got {tops}"
    for mod in ("k8snetdoctor/checks/sysctl.py", "k8snetdoctor/probes/collect.py",
                "k8snetdoctor/reports/report.schema.json"):
        assert mod in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "netdoctor = k8snetdoctor.cli:main" in text and "kubectl-netdoctor = k8snetdoctor.cli:main" in text
