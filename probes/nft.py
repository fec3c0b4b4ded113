"""The whole nftables ruleset, as the JSON `nft -j list ruleset` prints.

kube-proxy's nftables mode (1.29+) and firewalld/ufw on nftables keep their rules here, and
the iptables-nft backend's tables show up here too (their comments and statistic
probabilities are lost in this form, so iptables-save text stays the source for those).
"""
from __future__ import annotations

import json
from collections import Counter

from k8snetdoctor.model import Evidence

from ._common import CollectError, evidence, run

KIND = "nft-ruleset"


def summarize(doc: dict) -> str:
    """One line per table (`table ip kube-proxy: 12 chains, 40 rules`), like `nft list tables`."""
    chains: Counter = Counter()
    rules: Counter = Counter()
    tables: list[tuple[str, str]] = []
    for item in doc.get("nftables", []):
        if "table" in item:
            t = item["table"]
            tables.append((t.get("family", "?"), t.get("name", "?")))
        elif "chain" in item:
            c = item["chain"]
            chains[(c.get("family"), c.get("table"))] += 1
        elif "rule" in item:
            r = item["rule"]
            rules[(r.get("family"), r.get("table"))] += 1
    if not tables:
        return "(empty ruleset: no nftables tables)"
    return "\n".join(f"table {fam} {name}: {chains[(fam, name)]} chains, {rules[(fam, name)]} rules"
                     for fam, name in tables)


def collect_nft(node: str | None, netns: str | None = None) -> list[Evidence]:
    try:
        res = run(["nft", "-j", "list", "ruleset"], netns=netns)
    except CollectError as exc:
        return [evidence(KIND, node, "nft -j list ruleset", error=str(exc))]
    if res.rc != 0:
        return [evidence(KIND, node, res.cmd, excerpt=res.stderr,
                         error=f"{res.cmd} exited {res.rc}: {res.stderr.strip() or 'no message'}")]
    text = res.stdout.strip()
    try:
        doc = json.loads(text) if text else {"nftables": []}
    except json.JSONDecodeError as exc:
        return [evidence(KIND, node, res.cmd, excerpt=res.stdout,
                         error=f"{res.cmd} printed invalid JSON: {exc}")]
    return [evidence(KIND, node, res.cmd, data=doc, excerpt=summarize(doc))]
