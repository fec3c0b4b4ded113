"""How long `netdoctor check --all --lab` takes, and how much memory, at 3 and 10 nodes (root only).

    sudo python3 benchmarks/check_lab.py [--nodes 3 10] [--repeat 3] [--workers N]

For each size it builds a lab, then measures (median of --repeat runs):
  cli      the real command in a fresh process, `python -m k8snetdoctor check --all --lab NAME`, with the
           default table output and with `-o json` (which also carries every evidence item): wall
           time and peak RSS (the largest of the command and its forked collector workers);
  collect  collect_lab() alone, in this process, and
  judge    the engine over that bundle (all rules, correlation),
so a slow run says which half to look at. The lab is torn down even when a run fails.
"""
from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8snetdoctor.engine import analyze  # noqa: E402
from k8snetdoctor.lab.lab import down, up  # noqa: E402
from k8snetdoctor.registry import all_rules  # noqa: E402
from k8snetdoctor.transport.netns import collect_lab  # noqa: E402


def cli_run(name: str, fmt: str) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of the check command in a child process."""
    argv = [sys.executable, "-m", "k8snetdoctor", "check", "--all", "--lab", name, "-o", fmt]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"check --lab {name} failed ({proc.returncode}): {proc.stderr.read().decode()[-500:]}")
    return wall, usage.ru_maxrss / 1024, proc.returncode


def once(nodes: int, repeat: int, workers: int | None) -> dict[str, float]:
    name = f"bench{secrets.token_hex(2)}"
    try:
        lab = up(name, nodes=nodes)
        rules = all_rules()
        cli: dict[str, list[float]] = {"table": [], "json": []}
        rss: dict[str, list[float]] = {"table": [], "json": []}
        collect_s, judge_s, findings = [], [], 0
        for _ in range(repeat):
            for fmt in cli:
                wall, peak, rc = cli_run(name, fmt)
                if rc != 0:
                    raise SystemExit(f"the healthy {nodes}-node lab has failing findings (exit {rc})")
                cli[fmt].append(wall)
                rss[fmt].append(peak)
            t0 = time.perf_counter()
            bundle = collect_lab(lab, workers=workers)
            t1 = time.perf_counter()
            report = analyze(bundle, rules)
            t2 = time.perf_counter()
            collect_s.append(t1 - t0)
            judge_s.append(t2 - t1)
            findings = len(report.findings)
        return {"table": statistics.median(cli["table"]), "table_rss": max(rss["table"]),
                "json": statistics.median(cli["json"]), "json_rss": max(rss["json"]),
                "collect": statistics.median(collect_s),
                "judge": statistics.median(judge_s), "evidence": len(bundle.evidence), "findings": findings}
    finally:
        res = down(name)
        if res["namespacesLeft"]:
            print(f"warning: down left namespaces behind: {res['namespacesLeft']}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="collector processes (default: one per core)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    print(f"cpus: {os.cpu_count()}; median of {args.repeat} runs; peak RSS is the largest process of the command")
    print(f"{'nodes':>5} {'evidence':>8} {'findings':>8} {'table s':>8} {'peak MiB':>9} {'json s':>7} "
          f"{'peak MiB':>9} {'collect s':>9} {'judge s':>8}")
    for n in args.nodes:
        r = once(n, args.repeat, args.workers)
        print(f"{n:>5} {r['evidence']:>8} {r['findings']:>8} {r['table']:>8.2f} {r['table_rss']:>9.1f} "
              f"{r['json']:>7.2f} {r['json_rss']:>9.1f} {r['collect']:>9.2f} {r['judge']:>8.2f}", flush=True)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this benchmark process peaked at {own:.1f} MiB (in-process collect + judge)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
