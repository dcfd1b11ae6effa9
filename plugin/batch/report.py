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


def write_report(path: Path, summary: dict, unreadable: int) -> None:
    """Write the report from the audit's counters (see ``plugin.batch.audit._merge``)."""
    rows = "".join(
        f"<tr><td>{html.escape(v['encounter'])}</td><td>{html.escape(v['date'] or '')}</td>"
        f"<td>{html.escape(v['payer'] or '')}</td><td>{html.escape(v['verdict'])}</td>"
        f"<td>{v['findings']}</td><td>${v['dollars_at_risk']:,.2f}</td></tr>"
        for v in summary["top"]
    )
    by_rule, dollars_by_rule = summary["by_rule"], summary["dollars_by_rule"]
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>unitguard audit</title><style>body{{font:14px system-ui;margin:1.2rem;max-width:960px}}
td,th{{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #ddd}}</style></head><body>
<h1>unitguard audit</h1>
<p>{summary["visits"]} visits reviewed; {summary["unsupported"]} with an unsupported line;
{summary["findings"]} findings; <strong>${summary["at_risk"]:,.2f} at risk</strong>;
{unreadable} input lines or visits could not be read (see errors.csv).</p>
{_bars("Findings by rule", by_rule.most_common())}
{
        _bars(
            "Dollars at risk by rule",
            sorted(dollars_by_rule.items(), key=lambda kv: -kv[1]),
            money=True,
        )
    }
{_bars("Findings by therapist", summary["by_therapist"].most_common(15))}
{_bars("Findings by month", sorted(summary["by_month"].items()))}
<h2>Visits to fix first</h2><table><tr><th>Visit</th><th>Date</th><th>Payer</th>
<th>Verdict</th><th>Findings</th><th>At risk</th></tr>{rows}</table></body></html>"""
    path.write_text(body, encoding="utf-8")
