"""Every rule must be shown both failing (or warning) and passing on fixtures.

Each test in this folder records the statuses the rules produce; when the whole folder ran
unfiltered, the session fails if some registered rule was never seen failing and passing.
So a rule cannot be added, or lose its tests, without anyone noticing.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from k8snetdoctor.rule import Rule

HERE = Path(__file__).parent
SEEN: dict[str, set[str]] = defaultdict(set)
_ran_files: set[str] = set()


@pytest.fixture(autouse=True)
def _record_statuses(monkeypatch, request):
    original = Rule.finding

    def recording(self, status, message, **kw):
        finding = original(self, status, message, **kw)
        SEEN[self.id].add(status)
        return finding

    monkeypatch.setattr(Rule, "finding", recording)
    _ran_files.add(Path(str(request.node.fspath)).name)


def _whole_folder_ran(session) -> bool:
    opt = session.config.option
    if getattr(opt, "keyword", "") or getattr(opt, "markexpr", "") or getattr(opt, "lf", False):
        return False
    return {p.name for p in HERE.glob("test_*.py")} <= _ran_files


def pytest_sessionfinish(session, exitstatus):
    if exitstatus != 0 or not _whole_folder_ran(session):
        return
    from k8snetdoctor.registry import all_rules

    missing = []
    for rule in all_rules():
        statuses = SEEN.get(rule.id, set())
        if not statuses & {"fail", "warn"}:
            missing.append(f"{rule.id}: never seen failing or warning")
        if "pass" not in statuses:
            missing.append(f"{rule.id}: never seen passing")
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line("rules without a failing and a passing fixture:\n  " + "\n  ".join(missing), red=True)
        session.exitstatus = 1
