"""Fixtures for tests that build real netns labs (root only).

One 3-node lab per test session, named `t<4 hex>` so it can never collide with a lab a person
is running, torn down in a finalizer even when tests fail; and a session-end check that no
namespace with this run's prefix survived (any that did are removed and reported).
"""
from __future__ import annotations

import secrets
import subprocess

import pytest

RUN_ID = "t" + secrets.token_hex(2)
RUN_PREFIX = f"ndlab-{RUN_ID}"       # also covers second labs named RUN_ID + suffix


def run_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith(RUN_PREFIX))


@pytest.fixture(scope="session")
def lab_run_id():
    """The run's lab-name stem; the session ends with a check that nothing of it is left."""
    yield RUN_ID
    left = run_namespaces()
    if left:
        subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in left),
                       text=True, capture_output=True)
        pytest.fail(f"lab namespaces left behind at session end (now removed): {', '.join(left)}")


@pytest.fixture(scope="session")
def lab(lab_run_id):
    """The session's 3-node lab."""
    from k8snetdoctor.lab.lab import down, up

    try:
        built = up(lab_run_id, nodes=3)
    except Exception:
        down(lab_run_id)
        raise
    try:
        yield built
    finally:
        down(lab_run_id)
