"""Shared fixtures. Helpers for building evidence live in support.py (importable from tests)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def pytest_collection_modifyitems(config, items):
    """Tests marked `root` need root and network namespaces; skip them clearly elsewhere."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, iptables, netlink)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
