"""Checks a report or bundle document before it leaves the tool or after it comes back in.

The JSON Schema catches shape drift between the model and the published format; the
cross-reference checks below catch what a schema cannot express (a root cause naming a
finding that is not there, an evidence pointer to nothing), so a report attached to a ticket
never sends its reader looking for something that does not exist. jsonschema is imported
here, on first use, because it is slow to import and most commands never validate.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Mapping

REPORT_SCHEMA = "report.schema.json"
BUNDLE_SCHEMA = "bundle.schema.json"
_PROBLEMS = ("fail", "warn", "error")
_MAX_LISTED = 10


class ValidationError(ValueError):
    """A document that does not match its schema; `problems` holds (path, message) pairs."""

    def __init__(self, what: str, problems: list[tuple[str, str]]):
        self.what = what
        self.problems = problems
        lines = [f"{path}: {msg}" for path, msg in problems[:_MAX_LISTED]]
        if len(problems) > _MAX_LISTED:
            lines.append(f"... and {len(problems) - _MAX_LISTED} more")
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid {what} ({len(problems)} {noun}):\n  " + "\n  ".join(lines))


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The schema as shipped in the package, so the validator and the published file never differ."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _schema_problems(name: str, doc: Any) -> list[tuple[str, str]]:
    errors = sorted(_validator(name).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [(json_path(e.absolute_path), _short(e)) for e in errors]


def _short(error: Any) -> str:
    """oneOf errors repeat the whole instance; say which branches failed instead."""
    if error.validator == "oneOf" and error.context:
        inner = sorted({f"{json_path(c.absolute_path)}: {c.message}" for c in error.context})
        return "matches no allowed form (" + "; ".join(inner) + ")"
    return error.message


def _report_cross_references(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    findings = doc["findings"]
    keys: dict[str, int] = {}
    for i, f in enumerate(findings):
        if f["key"] in keys:
            problems.append((f"$.findings[{i}].key", f"duplicate finding key {f['key']!r} (also findings[{keys[f['key']]}])"))
        keys.setdefault(f["key"], i)
    evidence_ids: set[str] = set()
    for i, e in enumerate(doc["evidence"]):
        if e["id"] in evidence_ids:
            problems.append((f"$.evidence[{i}].id", f"duplicate evidence id {e['id']!r}"))
        evidence_ids.add(e["id"])

    for i, key in enumerate(doc["rootCauses"]):
        if key not in keys:
            problems.append((f"$.rootCauses[{i}]", f"{key!r} is not the key of any finding"))
        elif not findings[keys[key]]["rootCause"]:
            problems.append((f"$.rootCauses[{i}]", f"{key!r} names a finding whose rootCause is false"))
    listed = set(doc["rootCauses"])
    for i, f in enumerate(findings):
        at = f"$.findings[{i}]"
        if f["rootCause"] and f["status"] in _PROBLEMS and f["key"] not in listed:
            problems.append((f"{at}.rootCause", f"{f['key']!r} is a root cause missing from $.rootCauses"))
        if f["check"] != f["id"].split(".", 1)[0]:
            problems.append((f"{at}.check", f"{f['check']!r} is not the prefix of id {f['id']!r}"))
        if f["key"] != f["id"] and not f["key"].startswith(f["id"] + "@"):
            problems.append((f"{at}.key", f"{f['key']!r} does not start with its id {f['id']!r}"))
        for field, back in (("explains", "causedBy"), ("causedBy", "explains")):
            for j, other in enumerate(f[field]):
                if other not in keys:
                    problems.append((f"{at}.{field}[{j}]", f"{other!r} is not the key of any finding"))
                elif f["key"] not in findings[keys[other]][back]:
                    problems.append((f"{at}.{field}[{j}]", f"{other!r} does not list {f['key']!r} in its {back}"))
        for j, ref in enumerate(f["evidence"]):
            if ref["evidenceId"] not in evidence_ids:
                problems.append((f"{at}.evidence[{j}].evidenceId",
                                 f"{ref['evidenceId']!r} is not the id of any evidence item in the report"))

    summary = doc["summary"]
    for status in ("fail", "error", "warn", "skip", "pass"):
        actual = sum(1 for f in findings if f["status"] == status)
        if summary[status] != actual:
            problems.append((f"$.summary.{status}", f"says {summary[status]} but {actual} findings have that status"))
    expected_exit = 1 if any(f["status"] == "fail" for f in findings) else 0
    if summary["exitCode"] != expected_exit:
        problems.append(("$.summary.exitCode", f"is {summary['exitCode']} but should be {expected_exit}"))
    return problems


def _bundle_cross_references(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    problems = []
    for i, e in enumerate(doc["evidence"]):
        if e["id"] in seen:
            problems.append((f"$.evidence[{i}].id", f"duplicate evidence id {e['id']!r}"))
        seen.add(e["id"])
    return problems


def validate_report(doc: dict[str, Any]) -> None:
    """Raise ValidationError unless `doc` is a well-formed, self-consistent report document."""
    problems = _schema_problems(REPORT_SCHEMA, doc)
    if not problems:  # cross references assume the shape is right
        problems = _report_cross_references(doc)
    if problems:
        raise ValidationError("report", problems)


def validate_bundle(doc: dict[str, Any]) -> None:
    """Raise ValidationError unless `doc` is a well-formed evidence bundle document."""
    problems = _schema_problems(BUNDLE_SCHEMA, doc)
    if not problems:
        problems = _bundle_cross_references(doc)
    if problems:
        raise ValidationError("evidence bundle", problems)
