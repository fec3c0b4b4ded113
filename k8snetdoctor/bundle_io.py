"""Reading evidence bundles from disk with errors a person can act on."""
from __future__ import annotations

import json
from typing import Iterable

from .errors import UsageProblem
from .model import EvidenceBundle


def load_bundle(path: str) -> EvidenceBundle:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageProblem(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: not a JSON evidence bundle ({exc})") from None
    if not isinstance(doc, dict):
        raise UsageProblem(f"{path}: not a JSON evidence bundle (top level is not an object)")
    from .reports.validate import validate_bundle

    if doc.get("kind") == "EvidenceBundle":
        try:
            validate_bundle(doc)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise UsageProblem(f"{path}: not a valid evidence bundle: {first}") from None
    try:
        return EvidenceBundle.from_dict(doc)
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageProblem(f"{path}: {exc}") from None


def load_bundles(paths: Iterable[str]) -> EvidenceBundle:
    """Merge bundles from several nodes into one, as if one probe run had seen them all."""
    merged: EvidenceBundle | None = None
    for p in paths:
        b = load_bundle(p)
        merged = b if merged is None else merged.merge(b)
    if merged is None:
        raise UsageProblem("no evidence file given")
    return merged
