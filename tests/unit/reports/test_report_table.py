"""The terminal table: what to fix first, how, and nothing that hides it."""
from __future__ import annotations

import re

import pytest
from reportkit import SPECIAL

from k8snetdoctor.reports import table

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _index(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


def test_root_causes_come_first_with_their_fix(report):
    lines = _lines(table.render(report))
    assert lines[0].startswith("ROOT CAUSES")
    first = _index(lines, "1. [FAIL critical] IPv4 forwarding is enabled")
    fix = _index(lines, "$ sysctl -w net.ipv4.ip_forward=1")
    second = _index(lines, "2. [FAIL high] VXLAN UDP 8472 passes between nodes")
    others = _index(lines, "OTHER PROBLEMS")
    assert first < fix < second < others
    assert "run (generic):" in lines[fix - 1]


def test_symptom_is_indented_under_its_cause_and_not_repeated(report):
    text = table.render(report)
    lines = _lines(text)
    cause = _index(lines, "demo.udp-blocked@a")
    symptom = _index(lines, "demo.pod-to-pod@b->a")
    assert cause < symptom < _index(lines, "3. [WARN low]")
    assert lines[symptom - 1].strip() == "explains:"
    assert lines[symptom].startswith("     ") and "└ demo.pod-to-pod@b->a" in lines[symptom]
    assert text.count("demo.pod-to-pod@b->a") == 1, "a symptom shown under its cause is not listed again"


def test_errors_go_to_other_problems_and_summary_ends_the_report(report):
    lines = _lines(table.render(report))
    others = _index(lines, "OTHER PROBLEMS")
    assert _index(lines, "demo.broken") > others
    assert "rule raised KeyError" in lines[_index(lines, "demo.broken")]
    assert lines[-1] == "3 fail, 1 warn, 1 pass, 1 skip, 1 error"


def test_passes_and_skips_are_collapsed_unless_verbose(report):
    quiet = table.render(report)
    assert "sysctl.ip-forward@b" not in quiet and "sysctl.ip-forward@c" not in quiet
    assert "(1 pass and 1 skip not listed; --verbose lists them)" in quiet
    loud = table.render(report, verbose=True)
    assert "sysctl.ip-forward@b" in loud and "sysctl.ip-forward@c" in loud
    assert "permission denied reading /proc/sys" in " ".join(loud.split()), "a skip shows why"
    assert "evidence (a, sysctls):" in loud and "net.ipv4.ip_forward = 0" in loud
    assert "not listed" not in loud


def test_platform_option_picks_the_platform_commands(report):
    generic = table.render(report)
    assert "$ iptables -I INPUT -p udp --dport 8472 -j ACCEPT" in generic
    assert "also for: ufw, aws (--platform shows them)" in generic
    ufw = table.render(report, platform="ufw")
    assert "run (ufw):" in ufw and "$ ufw allow proto udp from 10.0.0.0/24 to any port 8472" in ufw
    assert "iptables -I INPUT" not in ufw
    # a rule without commands for the chosen platform still shows something runnable, labelled
    assert "run (generic; none for ufw):" in ufw and "$ sysctl -w net.ipv4.ip_forward=1" in ufw


def test_unknown_platform_is_refused(report):
    with pytest.raises(ValueError, match="unknown platform 'windows'"):
        table.render(report, platform="windows")


def test_colour_only_when_asked(report):
    plain = table.render(report)
    assert "\x1b" not in plain
    coloured = table.render(report, color=True)
    assert "\x1b[1;31mFAIL\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == plain


def test_messages_wrap_to_the_width_but_commands_do_not(report):
    report.findings[1].message = "word " * 60
    report.findings[3].message = "symptom " * 30  # wrapped inside the indented explains table
    text = table.render(report, width=70, verbose=True)
    for line in _lines(text):
        if line.lstrip().startswith("$ "):
            continue  # a wrapped command would paste as two broken ones
        assert len(line) <= 70, line
    assert "$ sysctl --system   # then: grep -rn ip_forward /etc/sysctl.d /run/sysctl.d" in text
    assert text.count("word") == 60 and text.count("symptom") == 30


def test_special_characters_survive(report):
    text = table.render(report)
    assert SPECIAL in text
    assert "$ echo '" + SPECIAL + "'" in text


def test_control_characters_cannot_reach_the_terminal(report):
    report.findings[0].message = "before\x1b[2Jafter\x07"
    text = table.render(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "before?[2Jafter?" in text


def test_a_report_without_findings_says_so():
    from k8snetdoctor.model import Report

    assert table.render(Report()).splitlines() == ["No findings: no rule ran.", "", "0 fail, 0 warn, 0 pass, 0 skip, 0 error"]


def test_rendering_does_not_change_the_report(report):
    before = report.to_dict()
    table.render(report, verbose=True, color=True, platform="aws")
    assert report.to_dict() == before
