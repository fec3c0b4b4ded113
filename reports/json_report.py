"""The machine-readable report: Report.to_dict(), checked against the published schema first.

Validating on the way out means a model change that drifts from report.schema.json fails the
test suite (which renders through here) instead of reaching a ticket or a CI parser.
"""
from __future__ import annotations

import json
from typing import Any

from k8snetdoctor.model import Report


def render(report: Report, **_: Any) -> str:
    """Options meant for other formats (verbose, color, width, platform) do not change JSON."""
    from .validate import validate_report

    doc = report.to_dict()
    validate_report(doc)
    # ensure_ascii=False keeps node names and messages readable; the output is UTF-8 text anyway.
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
