"""A digest of everything the review says on a fixed corpus, to show a speed change left the
results byte-identical.

The corpus: the benchmark's visits (``review_bench.make_visit``, seed 7), every Encounter of every
fixture (``fixtures/`` and ``fixtures/vendor/`` with its code map), and an audit of a generated
export (``unitguard synth``: patients with many visits, so same-day pooling, earlier visits and
episodes are read from patient-wide indexes). Each report is rendered as the contract's JSON.

    python benchmarks/review_digest.py --write /tmp/before.json   # on the old code
    python benchmarks/review_digest.py --check /tmp/before.json   # on the new: exit 1 on a change

``--check`` names the first differing report and the keys that differ; with ``--explain`` it
accounts for every changed report instead: per rule, the reports where its findings appeared,
disappeared or changed (message, fix, evidence or money), and the other keys that changed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from review_bench import make_visit  # noqa: E402

from plugin.batch.audit import run_audit  # noqa: E402
from plugin.batch.synth import generate  # noqa: E402
from plugin.errors import InputError  # noqa: E402
from plugin.fhir.codemap import load_code_map  # noqa: E402
from plugin.policy import load_policy  # noqa: E402
from plugin.report import to_dict  # noqa: E402
from plugin.review import review_bundle  # noqa: E402


def _render(bundle: dict, policy, encounter: str | None = None, code_map=None) -> object:
    try:
        report = review_bundle(bundle, encounter_id=encounter, policy=policy, code_map=code_map)
    except InputError as exc:
        return {"error": str(exc)}
    return to_dict(report)


def corpus(visits: int, audit_visits: int) -> dict[str, object]:
    """Every report of the corpus, by a stable name."""
    policy = load_policy()
    out: dict[str, object] = {}
    rng = random.Random(7)
    for n in range(visits):
        out[f"bench/{n}"] = _render(orjson.loads(make_visit(rng, n)), policy)
    code_map = load_code_map(ROOT / "fixtures" / "vendor" / "epic_code_map.csv")
    for path in sorted((ROOT / "fixtures").glob("**/*.json")):
        if path.name == "expected.json":
            continue
        bundle = json.loads(path.read_text())
        encounters = [
            e["resource"]["id"]
            for e in bundle.get("entry", [])
            if e.get("resource", {}).get("resourceType") == "Encounter"
        ]
        for enc in [None, *encounters]:
            name = f"{path.relative_to(ROOT)}#{enc or 'latest'}"
            out[name] = _render(bundle, policy, enc, code_map)
    with tempfile.TemporaryDirectory() as scratch:
        export, result = Path(scratch) / "export", Path(scratch) / "out"
        generate(export, audit_visits, 0.2, seed=3)
        run_audit(export, result, progress=False)
        for name in ("visits.csv", "findings.csv", "errors.csv"):
            with (result / name).open() as fh:
                out[f"audit/{name}"] = sorted(tuple(r.values()) for r in csv.DictReader(fh))
    return out


def _by_rule(report: object) -> dict[str, list]:
    found: dict[str, list] = {}
    if isinstance(report, dict):
        for finding in report.get("findings", ()):
            found.setdefault(finding["rule"], []).append(finding)
    return found


def _audit_rows(rows: list) -> dict[str, list]:
    """findings.csv rows (value tuples in FINDING_FIELDS order) by their rule."""
    from plugin.batch.passes import FINDING_FIELDS

    at = list(FINDING_FIELDS).index("rule")
    found: dict[str, list] = {}
    for row in rows or ():
        found.setdefault(row[at], []).append(row)
    return found


def explain(before: dict, after: dict, changed: list[str]) -> None:
    """Account for every changed report: per rule, where its findings appeared, disappeared or
    changed; then the other keys that changed (services, money, verdict, notes)."""
    from collections import Counter, defaultdict

    per_rule: dict[str, Counter] = defaultdict(Counter)
    audit: dict[str, tuple[int, int]] = {}  # rule -> findings.csv rows before, after
    other: Counter = Counter()
    examples: dict[tuple[str, str], str] = {}
    for name in changed:
        old, new = before.get(name), after.get(name)
        if name.startswith("audit/"):
            if name != "audit/findings.csv":
                other[name] += 1
                continue
            old_rules, new_rules = _audit_rows(old), _audit_rows(new)
            for rule in sorted(set(old_rules) | set(new_rules)):
                gone = Counter(map(tuple, old_rules.get(rule, ())))
                came = Counter(map(tuple, new_rules.get(rule, ())))
                if gone != came:
                    audit[rule] = (sum(gone.values()), sum(came.values()))
            continue
        if not isinstance(old, dict) or not isinstance(new, dict):
            other["new or unreadable report"] += 1
            continue
        old_rules, new_rules = _by_rule(old), _by_rule(new)
        for rule in sorted(set(old_rules) | set(new_rules)):
            was, now = old_rules.get(rule, []), new_rules.get(rule, [])
            if was == now:
                continue
            how = "appeared" if not was else "disappeared" if not now else "changed"
            per_rule[rule][how] += 1
            examples.setdefault((rule, how), name)
        for key in sorted(set(old) | set(new)):
            if key != "findings" and old.get(key) != new.get(key):
                other[key] += 1
                examples.setdefault(("key", key), name)
    print(f"{len(changed)} of {len(after)} reports changed")
    for rule, counts in sorted(per_rule.items()):
        parts = ", ".join(f"{how} in {n}" for how, n in sorted(counts.items()))
        eg = "; e.g. " + ", ".join(
            f"{how} {examples[(rule, how)]}" for how in sorted(counts) if (rule, how) in examples
        )
        print(f"  {rule}: {parts}{eg if (rule, next(iter(counts))) in examples else ''}")
    for rule, (was, now) in sorted(audit.items()):
        print(f"  audit/findings.csv {rule}: {was} rows before, {now} after")
    for key, n in sorted(other.items()):
        eg = examples.get(("key", key))
        print(f"  other key {key}: {n} report(s){f'; e.g. {eg}' if eg else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=2000)
    parser.add_argument("--audit-visits", type=int, default=400)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="save the reports here")
    group.add_argument("--check", type=Path, help="compare with reports saved by --write")
    parser.add_argument("--explain", action="store_true", help="with --check: account by rule")
    args = parser.parse_args()
    reports = json.loads(json.dumps(corpus(args.visits, args.audit_visits)))
    digest = hashlib.sha256(json.dumps(reports, sort_keys=True).encode()).hexdigest()
    if args.write:
        args.write.write_text(json.dumps(reports, sort_keys=True))
        print(f"{len(reports)} reports written, digest {digest[:16]}")
        return
    before = json.loads(args.check.read_text())
    changed = [k for k in before if before[k] != reports.get(k)] + [
        k for k in reports if k not in before
    ]
    if not changed:
        print(f"{len(reports)} reports identical, digest {digest[:16]}")
        return
    if args.explain:
        explain(before, reports, changed)
        sys.exit(1)
    first = changed[0]
    old, new = before.get(first), reports.get(first)
    keys = (
        sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if isinstance(old, dict) and isinstance(new, dict)
        else []
    )
    print(f"{len(changed)} of {len(reports)} reports changed; first: {first}, keys {keys}")
    for key in keys[:5]:
        print(f"  {key}: before {json.dumps(old.get(key))[:400]}")
        print(f"  {key}: after  {json.dumps(new.get(key))[:400]}")
    sys.exit(1)


if __name__ == "__main__":
    main()
