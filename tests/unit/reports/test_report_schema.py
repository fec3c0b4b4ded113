"""The JSON report and the bundle against their published schemas, and what the schemas must refuse."""
from __future__ import annotations

import configparser
import copy
import fnmatch
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from reportkit import SPECIAL, by_key
from support import bundle, ev

from k8snetdoctor.model import PLATFORMS, SEVERITIES, STATUSES, EvidenceBundle, Finding, Report
from k8snetdoctor.reports import json_report
from k8snetdoctor.reports.validate import ValidationError, load_schema, validate_bundle, validate_report

ROOT = Path(__file__).resolve().parents[3]


def test_json_output_validates_and_round_trips(report):
    text = json_report.render(report)
    doc = json.loads(text)
    validate_report(doc)
    again = Report.from_dict(doc)
    assert again.to_dict() == report.to_dict()
    assert doc["summary"] == {"fail": 3, "error": 1, "warn": 1, "skip": 1, "pass": 1, "exitCode": 1}
    assert doc["rootCauses"] == ["sysctl.ip-forward@a", "demo.udp-blocked@a", "demo.odd-text@b"]


def test_json_keeps_special_characters_verbatim(report):
    again = Report.from_dict(json.loads(json_report.render(report)))
    odd = by_key(again)["demo.odd-text@b"]
    assert odd.message == SPECIAL
    assert odd.evidence[0].excerpt == SPECIAL
    assert "ünïcødé ☃" in json_report.render(report), "non-ASCII is written as text, not \\u escapes"


def test_json_renderer_refuses_a_report_the_model_got_wrong(report):
    # what a typo in a rule declaration or a model change would produce
    report.findings[0].severity = "urgent"
    report.findings[1].failureModes.append("FM-1")
    with pytest.raises(ValidationError) as info:
        json_report.render(report)
    assert "$.findings[0].severity: 'urgent' is not one of" in str(info.value)
    assert "$.findings[1].failureModes[2]: 'FM-1' does not match" in str(info.value)


def _drop(path):
    def mutate(doc):
        *parents, last = path
        target = doc
        for p in parents:
            target = target[p]
        del target[last]
    return mutate


def _set(path, value):
    def mutate(doc):
        *parents, last = path
        target = doc
        for p in parents:
            target = target[p]
        target[last] = value
    return mutate


BROKEN = {
    "wrong status": (_set(["findings", 0, "status"], "failed"), "$.findings[0].status"),
    "wrong severity": (_set(["findings", 0, "severity"], "urgent"), "$.findings[0].severity"),
    "missing finding key": (_drop(["findings", 0, "key"]), "'key' is a required property"),
    "missing summary": (_drop(["summary"]), "'summary' is a required property"),
    "unknown top-level property": (_set(["extra"], 1), "Additional properties"),
    "unknown finding property": (_set(["findings", 0, "remedy"], None), "$.findings[0]"),
    "wrong schemaVersion": (_set(["schemaVersion"], "2"), "$.schemaVersion"),
    "wrong kind": (_set(["kind"], "EvidenceBundle"), "$.kind"),
    "bad rule id": (_set(["findings", 0, "id"], "IPForward"), "$.findings[0].id"),
    "bad failure mode id": (_set(["findings", 0, "failureModes"], ["FM-7"]), "$.findings[0].failureModes[0]"),
    "node pair of three": (_set(["findings", 0, "scope", "nodePairs"], [["a", "b", "c"]]), "$.findings[0].scope.nodePairs[0]"),
    "unknown platform": (_set(["findings", 0, "remediation", "commands"], {"windows": ["netsh"]}), "$.findings[0].remediation"),
    "commands not a list": (_set(["findings", 0, "remediation", "commands"], {"generic": "sysctl -w x=1"}), "$.findings[0].remediation"),
    "evidence item missing id": (_drop(["evidence", 0, "id"]), "$.evidence[0]"),
    "bad timestamp": (_set(["generatedAt"], "yesterday"), "$.generatedAt"),
    "exit code 3 in a report": (_set(["summary", "exitCode"], 3), "$.summary.exitCode"),
    # what the schema cannot see, the cross-reference check must
    "dangling rootCauses key": (_set(["rootCauses", 0], "sysctl.ip-forward@zz"), "$.rootCauses[0]"),
    "dangling explains key": (_set(["findings", 1, "explains"], ["demo.pod-to-pod@nowhere"]), "$.findings[1].explains[0]"),
    "dangling causedBy key": (_set(["findings", 3, "causedBy"], ["demo.udp-blocked@zz"]), "$.findings[3].causedBy[0]"),
    "dangling evidence ref": (_set(["findings", 0, "evidence", 0, "evidenceId"], "a/node/gone#0"), "$.findings[0].evidence[0].evidenceId"),
    "root cause not flagged": (_set(["findings", 0, "rootCause"], False), "$.rootCauses[0]"),
    "summary miscounted": (_set(["summary", "fail"], 0), "$.summary.fail"),
    "exit code disagrees": (_set(["summary", "exitCode"], 0), "$.summary.exitCode"),
    "duplicate finding key": (_set(["findings", 2, "key"], "sysctl.ip-forward@a"), "$.findings[2].key"),
    "check is not the id prefix": (_set(["findings", 0, "check"], "vxlan"), "$.findings[0].check"),
}


def test_the_fixture_document_is_what_the_broken_cases_assume(doc):
    # the mutations above index findings by position; pin the positions they rely on
    assert [f["key"] for f in doc["findings"]][:4] == [
        "sysctl.ip-forward@a", "demo.udp-blocked@a", "demo.odd-text@b", "demo.pod-to-pod@b->a"]
    validate_report(doc)


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_schema_rejects_broken_document(doc, case):
    mutate, expected = BROKEN[case]
    mutate(doc)
    with pytest.raises(ValidationError) as info:
        validate_report(doc)
    assert expected in str(info.value)
    assert info.value.problems, "problems are listed as (path, message) pairs"


def test_error_message_names_path_and_problem(doc):
    doc["findings"][2]["status"] = "maybe"
    with pytest.raises(ValidationError) as info:
        validate_report(doc)
    text = str(info.value)
    assert text.startswith("invalid report (1 problem)")
    assert "$.findings[2].status: 'maybe' is not one of" in text


def test_schema_enums_match_the_model():
    report_schema = load_schema("report.schema.json")
    finding = report_schema["$defs"]["finding"]["properties"]
    assert set(finding["status"]["enum"]) == set(STATUSES)
    assert set(finding["severity"]["enum"]) == set(SEVERITIES)
    platforms = report_schema["$defs"]["remediation"]["properties"]["commands"]["propertyNames"]["enum"]
    assert platforms == list(PLATFORMS)
    assert set(report_schema["$defs"]["finding"]["required"]) == set(Finding("x.y", "x", "t", "pass", "info", "m").to_dict())


@pytest.mark.parametrize("name", ["report.schema.json", "bundle.schema.json"])
def test_schemas_are_valid_draft_2020_12(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_both_schemas_define_evidence_identically():
    report_schema, bundle_schema = load_schema("report.schema.json"), load_schema("bundle.schema.json")
    assert bundle_schema["$defs"]["evidence"] == report_schema["$defs"]["evidence"]
    assert bundle_schema["$defs"]["timestamp"] == report_schema["$defs"]["timestamp"]


def test_schemas_ship_in_the_package():
    """The validator reads schemas from the installed package; a wheel without one cannot validate."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = cfg["options.package_data"]["k8snetdoctor.reports"].split()
    for schema in sorted((ROOT / "reports").glob("*.json")):
        assert any(fnmatch.fnmatch(schema.name, p) for p in patterns), f"{schema.name} is not in package_data"


def _bundle_doc() -> dict:
    b = bundle(ev("sysctls", "a", {"net.ipv4.ip_forward": "1"}, excerpt=SPECIAL),
               ev("links", "a", error="netlink: permission denied"))
    return json.loads(b.dumps())


def test_a_real_bundle_validates_and_round_trips():
    doc = _bundle_doc()
    validate_bundle(doc)
    assert EvidenceBundle.from_dict(doc).to_dict() == doc


def test_report_evidence_validates_as_bundle_evidence(report):
    validate_bundle(EvidenceBundle(evidence=report.evidence).to_dict())


BROKEN_BUNDLES = {
    "wrong kind": (lambda d: d.update(kind="Report"), "$.kind"),
    "unknown vantage": (lambda d: d["evidence"][0].update(vantage="satellite"), "$.evidence[0].vantage"),
    "missing evidence field": (lambda d: d["evidence"][0].pop("error"), "'error' is a required property"),
    "cluster not an object": (lambda d: d.update(cluster=["nodes"]), "$.cluster"),
    "duplicate evidence id": (lambda d: d["evidence"].append(copy.deepcopy(d["evidence"][0])), "$.evidence[2].id"),
}


@pytest.mark.parametrize("case", list(BROKEN_BUNDLES), ids=list(BROKEN_BUNDLES))
def test_bundle_schema_rejects_broken_document(case):
    doc = _bundle_doc()
    mutate, expected = BROKEN_BUNDLES[case]
    mutate(doc)
    with pytest.raises(ValidationError, match="invalid evidence bundle") as info:
        validate_bundle(doc)
    assert expected in str(info.value)


def test_report_is_not_a_bundle(doc):
    with pytest.raises(ValidationError):
        validate_bundle(doc)
    with pytest.raises(ValidationError):
        validate_report(_bundle_doc())

