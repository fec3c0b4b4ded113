"""How long the active tests take on a healthy lab, at 3 and 10 nodes (root only).

    sudo python3 benchmarks/active_lab.py [--nodes 3 10] [--repeat 3] [--deadline 30]

For each size it builds a lab, then measures probe_lab() in this process:
  cold     the first run (imports scapy/httpx/dnspython, first HTTP client) — what one CLI run pays;
  warm     the median of --repeat further runs;
  reach    the median of runs without the tests whose healthy answer is silence (kubelet from
           outside, ETP-Local NodePorts on nodes without an endpoint): those wait out their
           timeouts by design, so this is the floor set by the probes themselves.
It prints the number of tests and vantages, how many were not as expected (0 on a healthy lab),
and the peak RSS of the process. The lab is torn down even when a run fails.
"""
from __future__ import annotations

import argparse
import resource
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8snetdoctor.lab.lab import down, up  # noqa: E402
from k8snetdoctor.probes.active.lab import probe_lab  # noqa: E402
from k8snetdoctor.probes.active.model import UNREACHABLE  # noqa: E402


def timed(lab, deadline: float, select=None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    ev = probe_lab(lab, deadline_s=deadline, select=select)
    return time.perf_counter() - t0, ev[-1].data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--deadline", type=float, default=30.0)
    args = ap.parse_args()
    print(f"{'nodes':>5} {'tests':>6} {'vantages':>8} {'cold s':>7} {'warm s':>7} {'reach s':>8} "
          f"{'not ok':>6} {'skipped':>7}")
    for n in args.nodes:
        name = "bact" + secrets.token_hex(3)
        lab = up(name, nodes=n)
        try:
            cold, summary = timed(lab, args.deadline)
            warm = [timed(lab, args.deadline)[0] for _ in range(args.repeat)]
            reach = [timed(lab, args.deadline, lambda t: t.expect != UNREACHABLE)[0] for _ in range(args.repeat)]
        finally:
            down(name)
        print(f"{n:>5} {summary['tests']:>6} {len(summary['vantages']):>8} {cold:>7.2f} "
              f"{statistics.median(warm):>7.2f} {statistics.median(reach):>8.2f} {summary['failing']:>6} "
              f"{summary['skipped']:>7}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
