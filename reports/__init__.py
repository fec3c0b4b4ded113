"""Report renderers: table, json, markdown, junit.

Every renderer is a pure `render(report, **opts) -> str`; the CLI picks one by name and writes
the text. Importing this package stays cheap (tabulate and jsonschema are imported by the
renderers that need them, when they run), so `netdoctor --help` does not pay for reports.
"""
from __future__ import annotations

from typing import Any, Callable

from k8snetdoctor.model import Report

from . import json_report, junit, markdown, table

Renderer = Callable[..., str]

RENDERERS: dict[str, Renderer] = {
    "table": table.render,
    "json": json_report.render,
    "markdown": markdown.render,
    "junit": junit.render,
}


def render(report: Report, fmt: str, **opts: Any) -> str:
    """Render `report` as `fmt`; options a format does not use are ignored by it."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r} (choose from {', '.join(RENDERERS)})") from None
    return renderer(report, **opts)
