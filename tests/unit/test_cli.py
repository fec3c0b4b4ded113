"""The command line: exit codes, one-line errors, and reports that validate."""
from __future__ import annotations

import json

import pytest
from support import bundle, ev

from k8snetdoctor.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def write_bundle(tmp_path, name="ev.json", ip_forward="0"):
    b = bundle(ev("sysctls", "node-a", {"net.ipv4.ip_forward": ip_forward,
                                        "net.bridge.bridge-nf-call-iptables": "1"}))
    p = tmp_path / name
    p.write_text(b.dumps())
    return p


def one_line_error(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_analyze_fails_with_exit_1_and_json_validates(tmp_path, capsys):
    from k8snetdoctor.reports.validate import validate_report

    code, out, _ = run(capsys, "analyze", str(write_bundle(tmp_path)), "-o", "json", "--checks", "sysctl")
    assert code == 1
    doc = json.loads(out)
    validate_report(doc)
    failing = [f for f in doc["findings"] if f["status"] == "fail"]
    assert [f["id"] for f in failing] == ["sysctl.ip-forward"]
    assert doc["rootCauses"] == ["sysctl.ip-forward@node-a"]


def test_analyze_healthy_bundle_exits_0(tmp_path, capsys):
    code, out, _ = run(capsys, "analyze", str(write_bundle(tmp_path, ip_forward="1")), "--checks", "sysctl")
    assert code == 0
    assert "sysctl" in out or "pass" in out


def test_analyze_writes_output_file(tmp_path, capsys):
    target = tmp_path / "ticket.md"
    code, _, err = run(capsys, "analyze", str(write_bundle(tmp_path)), "-o", "markdown",
                       "--output-file", str(target))
    assert code == 1
    assert "ip_forward" in target.read_text()
    assert "wrote markdown report" in err


@pytest.mark.parametrize("content, expect", [
    (None, "no such file"),
    ("{not json", "not a JSON evidence bundle"),
    ('{"kind": "Report"}', "not an evidence bundle"),
    ('[1, 2]', "top level is not an object"),
])
def test_bad_evidence_files_are_one_line_errors_with_exit_2(tmp_path, capsys, content, expect):
    p = tmp_path / "bad.json"
    if content is not None:
        p.write_text(content)
    code, _, err = run(capsys, "analyze", str(p))
    assert code == 2
    assert expect in one_line_error(err)


def test_unknown_rule_pattern_and_unknown_rule_are_usage_errors(tmp_path, capsys):
    code, _, err = run(capsys, "analyze", str(write_bundle(tmp_path)), "--checks", "nope")
    assert code == 2 and "no rule matches nope" in one_line_error(err)
    code, _, err = run(capsys, "explain", "sysctl.nope")
    assert code == 2 and "did you mean" in one_line_error(err)


def test_bad_cluster_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "cluster.json"
    bad.write_text("kind: List")
    code, _, err = run(capsys, "analyze", str(write_bundle(tmp_path)), "--cluster", str(bad))
    assert code == 2 and "--cluster" in one_line_error(err)


def test_probe_collect_rejects_unknown_kinds_and_missing_host_root(tmp_path, capsys):
    code, _, err = run(capsys, "probe", "collect", "--only", "bogus")
    assert code == 2 and "unknown evidence kind bogus" in one_line_error(err)
    code, _, err = run(capsys, "probe", "collect", "--host-root", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in one_line_error(err)


def test_list_and_explain_document_every_rule(capsys):
    from k8snetdoctor.registry import all_rules

    code, out, _ = run(capsys, "list")
    assert code == 0
    for r in all_rules():
        assert r.id in out
        c, text, _ = run(capsys, "explain", r.id)
        assert c == 0 and r.title in text and "Fix:" in text


def test_unknown_option_is_a_usage_error(capsys):
    code, _, err = run(capsys, "analyze", "--frobnicate")
    assert code == 2
    assert "Traceback" not in err


def test_check_without_a_target_explains_the_choices(capsys, monkeypatch, tmp_path):
    import k8snetdoctor.lab.state as state

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(state, "list_labs", lambda: [])
    code, _, err = run(capsys, "check", "--all")
    assert code == 2 and "no cluster configured and no lab is up" in one_line_error(err)
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("apiVersion: v1\nkind: Config\n")
    code, _, err = run(capsys, "check", "--all")
    assert code == 3 and "a cluster is configured" in one_line_error(err)


def test_check_lab_and_local_exclude_each_other(capsys):
    code, _, err = run(capsys, "check", "--lab", "x", "--local")
    assert code == 2 and "--lab brings its own nodes" in one_line_error(err)
