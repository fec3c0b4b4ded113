"""The markdown report: a ticket a second engineer can act on without rerunning the tool."""
from __future__ import annotations

import re

from reportkit import SPECIAL

from k8snetdoctor.model import Report
from k8snetdoctor.reports import markdown

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _section(text: str, heading: str, next_heading: str | None = None) -> str:
    start = text.index(heading)
    end = text.index(next_heading, start) if next_heading else len(text)
    return text[start:end]


def test_title_summary_and_section_order(report):
    text = markdown.render(report)
    assert text.startswith("# netdoctor report\n")
    assert "**3 fail, 1 warn, 1 pass, 1 skip, 1 error** · exit code 1" in text
    assert text.index("## Root causes") < text.index("## Other findings") < text.index("<details>")
    root = _section(text, "## Root causes", "## Other findings")
    assert root.index("### 1. IPv4 forwarding is enabled") < root.index("### 2. VXLAN UDP 8472") < root.index("### 3. Odd")


def test_root_cause_has_scope_message_and_fenced_evidence_with_provenance(report):
    cause = _section(markdown.render(report), "### 1. IPv4 forwarding", "### 2.")
    assert "`sysctl.ip-forward@a` · scope: node a" in cause
    assert "a: net.ipv4.ip\\_forward is 0, must be 1" in cause
    assert "**Evidence** (node `a`, source `sysctls`):\n\n```\nnet.ipv4.ip_forward = 0\n```" in cause


def test_remediation_is_a_sh_block_per_platform_in_platform_order(report):
    cause = _section(markdown.render(report), "### 2. VXLAN", "### 3.")
    assert "**Fix:** Allow UDP 8472 from the other nodes into a." in cause
    blocks = re.findall(r"(\w+):\n\n```sh\n(.*?)\n```", cause, re.S)
    assert blocks == [
        ("generic", "iptables -I INPUT -p udp --dport 8472 -j ACCEPT"),
        ("ufw", "ufw allow proto udp from 10.0.0.0/24 to any port 8472"),
        ("aws", "aws ec2 authorize-security-group-ingress --protocol udp --port 8472"),
    ]


def test_symptoms_are_listed_under_the_cause_they_explain(report):
    text = markdown.render(report)
    cause = _section(text, "### 2. VXLAN", "### 3.")
    assert "**Explains:**\n\n- **FAIL** `demo.pod-to-pod@b->a`: pod on b cannot reach pod on a" in cause
    assert "demo.pod-to-pod" not in _section(text, "## Other findings")


def test_failure_modes_and_references_are_links(report):
    cause = _section(markdown.render(report, fm_base="https://docs.example/fm.md"), "### 2. VXLAN", "### 3.")
    assert "**Failure modes:** [FM-01](https://docs.example/fm.md#fm-01), [FM-02](https://docs.example/fm.md#fm-02)" in cause
    assert "- <https://github.com/flannel-io/flannel/issues/1243>" in cause
    assert "- knowledge note: not a URL" in cause, "a reference that is not a URL stays text"


def test_evidence_containing_a_fence_cannot_close_its_block(report):
    cause = _section(markdown.render(report), "### 2. VXLAN", "### 3.")
    assert "````\necho a->b: timeout\n```\nraw | line\n````" in cause


def test_other_findings_table_and_collapsed_passes(report):
    text = markdown.render(report)
    other = _section(text, "## Other findings", "<details>")
    rows = [line for line in other.splitlines() if line.startswith("|")]
    assert rows[0] == "| Status | Severity | Finding | Scope | Message | Caused by |"
    assert rows[2].startswith("| ERROR | medium | demo.broken | cluster | rule raised KeyError")
    details = _section(text, "<details>")
    assert "<summary>1 passed, 1 skipped</summary>\n\n|" in details, "a blank line lets markdown render inside <details>"
    assert "| PASS | info | sysctl.ip-forward@b | node b |" in details
    assert "| SKIP | info | sysctl.ip-forward@c | node c | sysctls not collected on c: permission denied" in details
    assert details.rstrip().endswith("</details>")


def test_table_cells_escape_pipes_and_keep_one_line_per_row(report):
    odd = next(f for f in report.findings if f.key == "demo.odd-text@b")
    odd.status, odd.rootCause = "pass", False  # move the odd text into the passes table
    odd.message = SPECIAL + "\nsecond | line"
    text = markdown.render(report)
    row = next(line for line in text.splitlines() if "demo.odd-text@b" in line)
    assert len(UNESCAPED_PIPE.findall(row)) == 6, "5 columns: the pipes in the message are escaped"
    assert "a\\|b \\<none\\> \\& \"quoted\" 'single' ünïcødé ☃ \\`tick\\`<br>second \\| line" in row


def test_special_characters_are_escaped_in_prose_and_verbatim_in_blocks(report):
    section = _section(markdown.render(report), "### 3. Odd", "## Other findings")
    assert "a\\|b \\<none\\> \\& \"quoted\" 'single' ünïcødé ☃ \\`tick\\`" in section
    assert "```\n" + SPECIAL + "\n```" in section
    assert "```sh\necho '" + SPECIAL + "'\n```" in section


def test_cluster_text_cannot_start_headings_lists_or_html(report):
    report.findings[0].message = "# not a heading\n- not a list\n1. not numbered\n<script>x</script>\x1b[31m"
    cause = _section(markdown.render(report), "### 1.", "### 2.")
    assert "\\# not a heading  \n\\- not a list  \n1\\. not numbered  \n\\<script\\>x\\</script\\>?\\[31m" in cause


def test_a_report_without_findings_says_so():
    text = markdown.render(Report())
    assert "No findings: no rule ran." in text and "## Root causes" not in text


def test_rendering_does_not_change_the_report(report):
    before = report.to_dict()
    markdown.render(report)
    assert report.to_dict() == before
