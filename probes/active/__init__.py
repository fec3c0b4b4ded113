"""Active tests: packets and queries sent from nodes, pods and outside, recorded as evidence.

plan.py decides what to send from where (pure); tcp, http, icmp, mtu, vxlan and dns send it;
run.py runs each vantage's tests on its own thread and event loop under one global deadline;
collate.py turns results into Evidence (kinds conn, vxlan-echo, mtu, dns, active-run; see
docs/evidence.md). lab.py wires it to a netns lab.
"""
from .context import RunConfig
from .model import Plan, Result, Test, Vantage
from .plan import PlanConfig, build_plan
from .run import LocalExecutor, VantageExecutor, run_tests

__all__ = ["Plan", "PlanConfig", "Result", "RunConfig", "Test", "Vantage", "VantageExecutor", "LocalExecutor",
           "build_plan", "run_tests"]
