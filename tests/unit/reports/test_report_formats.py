"""The reports package as the CLI uses it: pick a format by name, pass the same options to any."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from reportkit import SPECIAL

from k8snetdoctor.reports import RENDERERS, json_report, junit, markdown, render, table

CLI_OPTIONS = {"verbose": True, "color": False, "width": 80, "platform": "ufw"}


def test_renderers_by_name():
    assert RENDERERS == {"table": table.render, "json": json_report.render,
                         "markdown": markdown.render, "junit": junit.render}


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "junit"])
def test_every_format_accepts_the_cli_options_and_renders_text(report, fmt):
    text = render(report, fmt, **CLI_OPTIONS)
    assert text.endswith("\n") and "demo.udp-blocked@a" in text


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "junit"])
def test_non_ascii_survives_every_format(report, fmt):
    text = render(report, fmt)
    assert "ünïcødé ☃" in text
    text.encode("utf-8")  # what the CLI writes


def test_the_special_text_reads_back_from_each_machine_format(report):
    doc = json.loads(render(report, "json"))
    assert next(f for f in doc["findings"] if f["key"] == "demo.odd-text@b")["message"] == SPECIAL
    root = ET.fromstring(render(report, "junit").encode("utf-8"))
    out = next(c for c in root.iter("testcase") if c.get("name") == "demo.odd-text@b").find("system-out").text
    assert SPECIAL in out


def test_unknown_format_is_a_clear_error(report):
    with pytest.raises(ValueError, match="unknown report format 'yaml' \\(choose from table, json, markdown, junit\\)"):
        render(report, "yaml")


def test_importing_reports_loads_neither_tabulate_nor_jsonschema():
    code = ("import sys, k8snetdoctor.reports\n"
            "heavy = [m for m in ('tabulate', 'jsonschema') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
