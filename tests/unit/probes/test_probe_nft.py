"""nft ruleset collection: parsed JSON kept whole, a readable per-table summary, errors."""
import json
import stat

import pytest

from k8snetdoctor.probes import nft

DOC = {"nftables": [
    {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
    {"table": {"family": "ip", "name": "kube-proxy", "handle": 1}},
    {"chain": {"family": "ip", "table": "kube-proxy", "name": "services", "handle": 1}},
    {"chain": {"family": "ip", "table": "kube-proxy", "name": "nodeports", "handle": 2}},
    {"rule": {"family": "ip", "table": "kube-proxy", "chain": "services", "handle": 3, "expr": []}},
    {"table": {"family": "inet", "name": "filter", "handle": 2}},
]}


def test_summary_counts_chains_and_rules_per_table():
    assert nft.summarize(DOC) == "table ip kube-proxy: 2 chains, 1 rules\ntable inet filter: 0 chains, 0 rules"
    assert "empty ruleset" in nft.summarize({"nftables": [{"metainfo": {}}]})


@pytest.fixture
def fake_nft(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{tmp_path}:/bin")

    def make(stdout: str, rc: int = 0):
        (tmp_path / "out").write_text(stdout)
        script = tmp_path / "nft"
        script.write_text(f"#!/bin/sh\ncat '{tmp_path}/out'\necho oops >&2\nexit {rc}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return make


def test_collect_keeps_the_document(fake_nft):
    fake_nft(json.dumps(DOC))
    [e] = nft.collect_nft("n1")
    assert e.ok and e.data == DOC and e.source == "nft -j list ruleset"
    assert "table ip kube-proxy" in e.excerpt


def test_empty_output_is_an_empty_ruleset(fake_nft):
    fake_nft("")
    [e] = nft.collect_nft("n1")
    assert e.ok and e.data == {"nftables": []}


def test_invalid_json_and_failures_are_errors(fake_nft):
    fake_nft("{not json")
    [e] = nft.collect_nft("n1")
    assert not e.ok and "invalid JSON" in e.error
    fake_nft("", rc=1)
    [e] = nft.collect_nft("n1")
    assert not e.ok and "exited 1" in e.error and "oops" in e.error


def test_missing_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    [e] = nft.collect_nft("n1")
    assert e.error == "nft not found on PATH"
