"""Finds the rules: every `Rule` constant in a module of `k8snetdoctor.checks`.

Discovery instead of a hand-kept list, so adding a rule is adding a file; and a rule declared
without a judge, or an id used twice, fails loudly here rather than silently never running.
"""
from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType

from .errors import UsageProblem
from .rule import Rule


class RegistryError(UsageProblem):
    """A selection that matches nothing, or a rule module that is malformed."""


def _rule_modules() -> list[ModuleType]:
    import k8snetdoctor.checks as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{pkg.__name__}.{info.name}"))
    return mods


@lru_cache(maxsize=1)
def all_rules() -> tuple[Rule, ...]:
    rules: dict[str, Rule] = {}
    for mod in _rule_modules():
        for value in vars(mod).values():
            if not isinstance(value, Rule):
                continue
            if value.judge_fn is None:
                raise RegistryError(f"rule {value.id} in {mod.__name__} has no judge function")
            other = rules.get(value.id)
            if other is not None and other is not value:
                raise RegistryError(f"rule id {value.id} is declared twice")
            rules[value.id] = value
    return tuple(sorted(rules.values(), key=lambda r: r.id))


def get(rule_id: str) -> Rule:
    for r in all_rules():
        if r.id == rule_id:
            return r
    raise KeyError(rule_id)


def select(patterns: list[str] | tuple[str, ...] | None = None) -> list[Rule]:
    """Rules matching any pattern: an exact id, a check name (`vxlan`), or a glob (`kubeproxy.*`)."""
    rules = list(all_rules())
    if not patterns:
        return rules
    chosen = [r for r in rules if any(p == r.check or fnmatch.fnmatchcase(r.id, p) for p in patterns)]
    unknown = [p for p in patterns if not any(p == r.check or fnmatch.fnmatchcase(r.id, p) for r in rules)]
    if unknown:
        raise RegistryError(f"no rule matches {', '.join(unknown)} (see `netdoctor list`)")
    return chosen
