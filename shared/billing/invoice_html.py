"""The printable invoice: one self-contained HTML page (inline CSS, A4, no scripts).

The customer's document, so it shows what they pay and why (usage at the sell price with
its unit prices, KaixuPush, credits, carried credit) and never what the operator paid
(cost, margin). Every value is escaped with :func:`html.escape`: an email address or an
operator name is text, never markup. A draft prints with a DRAFT watermark and no number,
a voided invoice with VOID, so neither passes for a bill. The browser's "Save as PDF" turns
it into the PDF (the admin screen's "Print / PDF" button opens it).
"""

from __future__ import annotations

import calendar
from datetime import datetime
from html import escape
from typing import Any

from shared import config
from shared.billing import reconcile

# The page runs no script and loads nothing: only its own inline style.
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
_STATUS_LABEL = {"draft": "Draft", "issued": "Issued", "paid": "Paid", "void": "Void"}
_STYLE = """
@page { size: A4; margin: 12mm 13mm 13mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 184mm; font: 8.8pt/1.25 "Helvetica Neue", Arial, sans-serif; color: #111; }
header { display: flex; justify-content: space-between; gap: 8mm; border-bottom: 2px solid #111;
  padding-bottom: 2.5mm; margin-bottom: 2mm; }
h1 { font-size: 16pt; margin: 0 0 1mm; letter-spacing: .02em; }
h2 { font-size: 9pt; margin: 3mm 0 .5mm; text-transform: uppercase; letter-spacing: .05em; color: #333; }
.operator strong { font-size: 11pt; }
.operator { white-space: pre-line; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 4mm; margin: 0; }
dt { color: #555; }
dd { margin: 0; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: .45mm 1.2mm; border-bottom: 1px solid #e2e2e2; vertical-align: top; text-align: left; }
th { font-size: 7pt; text-transform: uppercase; color: #555; border-bottom: 1px solid #999; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.small { font-size: 7.5pt; color: #444; }
.totals { width: 55%; margin-left: auto; margin-top: 2mm; }
.totals td { border: 0; padding: .3mm 1.2mm; }
.totals tr.grand td { border-top: 2px solid #111; font-weight: bold; font-size: 10.5pt; padding-top: 1mm; }
.status { display: inline-block; border: 1px solid #111; border-radius: 2px; padding: 0 2mm;
  font-weight: bold; }
.watermark { position: fixed; top: 40%; left: 0; right: 0; text-align: center; font-size: 90pt;
  font-weight: bold; color: rgba(200, 0, 0, .12); transform: rotate(-30deg); pointer-events: none; }
footer { margin-top: 3mm; border-top: 1px solid #ccc; padding-top: 1.5mm; }
footer p { margin: 0; }
@media screen { body { padding: 10mm 0; } }
tr, .totals { break-inside: avoid; }
"""


def _money(cents: int) -> str:
    """``-1234`` → ``\u2212$12.34`` (a real minus sign, U+2212: a credit reads as one)."""
    sign = "\u2212" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def _month(month: str) -> str:
    return f"{calendar.month_name[int(month[5:])]} {month[:4]}"


def _day(value: Any) -> str:
    if value is None:
        return "\u2014"
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp.strftime("%Y-%m-%d")


def _rates(unit: dict[str, str] | None) -> str:
    """The sell prices of a usage line, as a customer reads them."""
    if not unit:
        return "\u2014"
    text = f"${unit['input_usd_per_mtok']} in / ${unit['output_usd_per_mtok']} out per 1M tokens"
    if unit.get("request_usd") not in (None, "0"):
        text += f" + ${unit['request_usd']} per call"
    return text


def _row(*cells: tuple[str, str]) -> str:
    return "<tr>" + "".join(f'<td class="{cls}">{escape(text)}</td>' for cls, text in cells) + "</tr>"


def _usage_table(usage: list[dict[str, Any]]) -> str:
    rows = [
        _row(
            ("", f"{line['provider']} {line['model']}"),
            ("small", _rates(line.get("sell_unit"))),
            ("num", f"{line['calls']:,}"),
            ("num", f"{line['input_tokens']:,}"),
            ("num", f"{line['output_tokens']:,}"),
            ("num", _money(line["sell_cents"])),
        )
        for line in usage
    ] or ['<tr><td colspan="6" class="small">No AI usage this month.</td></tr>']
    head = (
        '<tr><th>Model</th><th>Unit prices</th><th class="num">Calls</th><th class="num">Tokens in</th>'
        '<th class="num">Tokens out</th><th class="num">Amount</th></tr>'
    )
    return f"<h2>AI usage</h2><table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _lines_table(title: str, lines: list[dict[str, Any]]) -> str:
    if not lines:
        return ""
    rows = "".join(_row(("", line["description"]), ("num", _money(line["cents"]))) for line in lines)
    head = '<tr><th>Description</th><th class="num">Amount</th></tr>'
    return f"<h2>{escape(title)}</h2><table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _totals(totals: dict[str, Any], carry: dict[str, Any]) -> str:
    grand = int(totals["grand_total_cents"])
    rows = [
        _row(("", "AI usage"), ("num", _money(totals["usage_cents"]))),
        _row(("", "KaixuPush"), ("num", _money(totals["push_cents"]))),
        _row(("", "Credits"), ("num", _money(-int(totals["credits_cents"])))),
    ]
    label = "Amount due" if grand >= 0 else "Credit remaining"
    rows.append(f'<tr class="grand"><td>{label}</td><td class="num">{escape(_money(abs(grand)))}</td></tr>')
    if int(totals["carried_out_nanos"]):
        to_month = _month(carry["to_month"])
        rows.append(
            _row(
                ("small", f"Credit carried to {to_month}"), ("num small", _money(totals["carried_out_cents"]))
            )
        )
    return f'<table class="totals"><tbody>{"".join(rows)}</tbody></table>'


def _header(row: dict[str, Any], snapshot: dict[str, Any]) -> str:
    settings = config.settings()
    operator = "\n".join(part for part in (settings.operator_address, settings.operator_email) if part)
    number = "DRAFT" if row["number"] is None else f"No. {row['number']}"
    meta = [
        ("Status", _STATUS_LABEL.get(row["status"], row["status"])),
        ("Issued", _day(row["issued_at"])),
        ("Period", _month(row["month"])),
        ("Customer", f"{snapshot['customer']['email']} (#{snapshot['customer']['id']})"),
    ]
    if row["paid_at"] is not None:
        meta.append(("Paid", _day(row["paid_at"])))
    if row["voided_at"] is not None:
        meta.append(("Voided", _day(row["voided_at"])))
    facts = "".join(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in meta)
    return (
        f'<header><div class="operator"><strong>{escape(settings.operator_name)}</strong>\n'
        f"{escape(operator)}</div>"
        f'<div><h1>Invoice <span class="status">{escape(number)}</span></h1><dl>{facts}</dl></div></header>'
    )


def render(row: dict[str, Any]) -> str:
    """The whole page for one invoice_snapshots row (its snapshot must be reconciled)."""
    snapshot = reconcile.document(row)
    others = [line for line in snapshot["lines"] if line["kind"] != "usage"]  # KaixuPush, then credits
    settings = config.settings()
    number = "draft" if row["number"] is None else str(row["number"])
    title = f"{settings.operator_name} invoice {number} \u2014 {row['month']}"
    watermark = {"draft": "DRAFT", "void": "VOID"}.get(row["status"])
    mark = f'<div class="watermark" aria-hidden="true">{watermark}</div>' if watermark else ""
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{mark}"
        f"{_header(row, snapshot)}"
        f"{_usage_table(snapshot['usage'])}"
        f"{_lines_table('Other charges and credits', others)}"
        f"{_totals(snapshot['totals'], snapshot['carry_over'])}"
        f'<footer class="small"><p>Amounts in USD. Each amount is rounded to the cent once, from exact '
        f"figures. {escape(snapshot['carry_over']['rule'])}</p></footer>"
        "</body></html>\n"
    )
