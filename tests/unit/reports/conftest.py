"""A fresh engine-built report per test: renderers must not mutate it, but tests may."""
from __future__ import annotations

import pytest
from reportkit import build_report

from k8snetdoctor.model import Report


@pytest.fixture
def report() -> Report:
    return build_report()


@pytest.fixture
def doc(report: Report) -> dict:
    return report.to_dict()
