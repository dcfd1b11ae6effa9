"""report.html: findings by rule, by therapist and by month, dollars at risk, the visits to fix
first; bar charts as inline SVG so the file reads offline."""

from __future__ import annotations

import html
from pathlib import Path


def _bars(title: str, counts: list[tuple[str, float]], money: bool = False) -> str:
    if not counts:
        return f"<h2>{html.escape(title)}</h2><p>None.</p>"
    top = max(v for _, v in counts) or 1
    rows, height = [], 22
    for n, (label, value) in enumerate(counts):
        width = int(360 * value / top)
        text = f"${value:,.2f}" if money else f"{value:g}"
        rows.append(
            f'<text x="0" y="{n * height + 15}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="230" y="{n * height + 4}" width="{width}" height="14" fill="#b3261e"/>'
            f'<text x="{236 + width}" y="{n * height + 15}" font-size="12">{text}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="700" height="{len(counts) * height}"'
        f' role="img" aria-label="{html.escape(title)}">{"".join(rows)}</svg>'
    )
    return f"<h2>{html.escape(title)}</h2>{svg}"


def _rule_table(summary: dict) -> str:
    from plugin.rules import RULES_BY_ID

    rows = []
    for rule_id, count in summary["by_rule"].most_common():
        found = RULES_BY_ID.get(rule_id)
        rows.append(
            f"<tr><td><code>{html.escape(rule_id)}</code></td>"
            f"<td>{html.escape(found.severity.value if found else '')}</td>"
            f"<td>{html.escape(found.title if found else '')}</td><td>{count:,}</td>"
            f"<td>${summary['dollars_by_rule'][rule_id]:,.2f}</td></tr>"
        )
    if not rows:
        return "<h2>Rules</h2><p>No findings.</p>"
    return (
        "<h2>Rules</h2><table><tr><th>Rule</th><th>Severity</th><th>What it means</th>"
        f"<th>Findings</th><th>At risk</th></tr>{''.join(rows)}</table>"
    )


def write_report(path: Path, summary: dict, unreadable: int) -> None:
    """Write the report from the audit's counters (see ``plugin.batch.outputs.merge_outputs``)."""
    rows = "".join(
        f"<tr><td>{html.escape(v['encounter'])}</td><td>{html.escape(v['date'] or '')}</td>"
        f"<td>{html.escape(v['payer'] or '')}</td><td>{html.escape(v['verdict'])}</td>"
        f"<td>{v['findings']}</td><td>${v['dollars_at_risk']:,.2f}</td></tr>"
        for v in summary["top"]
    )
    visits = summary["visits"]
    share = f"{summary['unsupported'] / visits:.1%}" if visits else "0%"
    tiles = "".join(
        f'<div class="tile"><b>{value}</b><span>{label}</span></div>'
        for value, label in (
            (f"{visits:,}", "visits reviewed"),
            (f"{summary['unsupported']:,} ({share})", "with an unsupported line"),
            (f"{summary['findings']:,}", "findings"),
            (f"${summary['at_risk']:,.2f}", "at risk"),
            (f"{unreadable:,}", "lines or visits unreadable (errors.csv)"),
        )
    )
    therapists = sorted(summary["dollars_by_therapist"].items(), key=lambda kv: -kv[1])[:15]
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>unitguard audit</title><style>body{{font:14px system-ui;margin:1.2rem;max-width:980px}}
td,th{{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #ddd;vertical-align:top}}
.tiles{{display:flex;gap:.8rem;flex-wrap:wrap}}.tile{{border:1px solid #ccc;border-radius:6px;
padding:.5rem .8rem;min-width:140px}}.tile b{{display:block;font-size:1.3rem}}
.tile span{{color:#555}}</style></head><body>
<h1>unitguard audit</h1>
<div class="tiles">{tiles}</div>
{_rule_table(summary)}
{_bars("Dollars at risk by month", sorted(summary["dollars_by_month"].items()), money=True)}
{_bars("Findings by month", sorted(summary["by_month"].items()))}
{_bars("Dollars at risk by therapist (top 15)", therapists, money=True)}
{_bars("Findings by therapist (top 15)", summary["by_therapist"].most_common(15))}
<h2>Visits to fix first</h2><table><tr><th>Visit</th><th>Date</th><th>Payer</th>
<th>Verdict</th><th>Findings</th><th>At risk</th></tr>{rows}</table>
<p>Per-visit results: visits.csv; one row per finding: findings.csv and findings.parquet.</p>
</body></html>"""
    from plugin.batch.outputs import private_file

    private_file(path).write_text(body, encoding="utf-8")
