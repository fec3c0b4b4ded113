"""JUnit XML: parseable by any CI, one suite per check, one case per finding."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from reportkit import SPECIAL

from k8snetdoctor.model import Report
from k8snetdoctor.reports import junit


def _parse(report: Report) -> ET.Element:
    return ET.fromstring(junit.render(report).encode("utf-8"))


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in root.iter("testcase")}


def test_counts_on_the_root_and_per_suite(report):
    root = _parse(report)
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "7", "failures": "3", "errors": "1", "skipped": "1"}
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == ["demo", "sysctl"]
    assert {k: suites["sysctl"].get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "3", "failures": "1", "errors": "0", "skipped": "1"}
    assert {k: suites["demo"].get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4", "failures": "2", "errors": "1", "skipped": "0"}
    for suite in suites.values():
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
        assert int(suite.get("errors")) == len(suite.findall("testcase/error"))
        assert int(suite.get("skipped")) == len(suite.findall("testcase/skipped"))


def test_each_status_maps_to_its_junit_element(report):
    cases = _cases(_parse(report))
    assert set(cases) == {f.key for f in report.findings}
    failure = cases["sysctl.ip-forward@a"].find("failure")
    assert failure.get("message") == "a: net.ipv4.ip_forward is 0, must be 1"
    assert failure.get("type") == "critical"
    assert "$ sysctl -w net.ipv4.ip_forward=1" in failure.text and "net.ipv4.ip_forward = 0" in failure.text
    assert cases["demo.broken"].find("error").get("message").startswith("rule raised KeyError")
    assert "permission denied" in cases["sysctl.ip-forward@c"].find("skipped").get("message")
    assert list(cases["sysctl.ip-forward@b"]) == [], "a pass is a bare testcase"
    assert cases["demo.pod-to-pod@b->a"].find("failure").text.count("caused by: demo.udp-blocked@a") == 1


def test_a_warning_passes_but_keeps_its_message(report):
    case = _cases(_parse(report))["demo.odd-text@b"]
    assert [child.tag for child in case] == ["system-out"]
    assert case.find("system-out").text.startswith("WARN [low] Odd text survives\nscope: node b\n" + SPECIAL)


def test_special_characters_survive_in_attributes_and_text(report):
    root = _parse(report)
    odd = _cases(root)["demo.odd-text@b"].find("system-out").text
    assert odd.count(SPECIAL) == 4  # message, evidence excerpt, fix summary, command
    broken = _cases(root)["demo.broken"].find("error")
    assert "'no such field <x> & y'" in broken.get("message")


def test_characters_xml_cannot_carry_are_replaced_not_fatal(report):
    report.findings[0].message = "colour \x1b[31m bell \x07 nul \x00 tab\tok"
    failure = _cases(_parse(report))["sysctl.ip-forward@a"].find("failure")
    assert failure.get("message") == "colour ?[31m bell ? nul ? tab\tok"


def test_declaration_and_timestamp_suit_strict_consumers(report):
    text = junit.render(report)
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")
    stamp = _parse(report).find("testsuite").get("timestamp")
    assert stamp == report.generatedAt.removesuffix("Z") and "Z" not in stamp


def test_a_report_without_findings_is_an_empty_valid_document():
    root = _parse(Report())
    assert root.get("tests") == "0" and list(root) == []
