"""How long the netns lab takes to come up and go down (root only).

    sudo python3 benchmarks/lab_build.py [--nodes 3 10] [--repeat 1]

Target: a 10-node lab up in under 60 s on a 2-core machine. After each `up` it also checks
that the NodePort answers on every node from the external namespace, so a fast but broken
build does not count, and reports that check's time separately.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8snetdoctor.lab import spec as S  # noqa: E402
from k8snetdoctor.lab import traffic  # noqa: E402
from k8snetdoctor.lab.lab import down, up  # noqa: E402


def once(nodes: int) -> dict[str, float]:
    name = f"bench{secrets.token_hex(2)}"
    t0 = time.perf_counter()
    try:
        lab = up(name, nodes=nodes)
        t_up = time.perf_counter() - t0
        t1 = time.perf_counter()
        bad = [n.name for n in lab.spec.nodes
               if not traffic.http_get(lab.external_ns, n.ip, S.NODEPORT_CLUSTER, timeout=3).ok]
        t_check = time.perf_counter() - t1
        if bad:
            raise SystemExit(f"lab {name}: NodePort {S.NODEPORT_CLUSTER} did not answer on {', '.join(bad)}")
        namespaces, processes = len(lab.state.namespaces), len(lab.state.processes)
    finally:
        t2 = time.perf_counter()
        res = down(name)
        t_down = time.perf_counter() - t2
    if res["namespacesLeft"]:
        raise SystemExit(f"down left namespaces behind: {res['namespacesLeft']}")
    return {"up": t_up, "check": t_check, "down": t_down, "namespaces": namespaces, "processes": processes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    print(f"cpus: {os.cpu_count()}")
    print(f"{'nodes':>5} {'netns':>5} {'procs':>5} {'up s':>7} {'check s':>8} {'down s':>7}")
    for n in args.nodes:
        for _ in range(args.repeat):
            r = once(n)
            print(f"{n:>5} {r['namespaces']:>5} {r['processes']:>5} {r['up']:>7.2f} {r['check']:>8.2f} "
                  f"{r['down']:>7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
