"""The monthly statement: one self-contained HTML file per account and month, read offline.

It holds the month's figures (balance sheet, loan roll-forward, interest, realized PnL), the
reconciliation status with the causes of each break, and charts: per asset over the month,
balance, borrowed, unpaid interest and net equity at each day's end with the snapshots and
breaks marked; and the interest expense by day in the reporting currency. Charts are Plotly,
its script inlined once (no network: nothing is fetched when the file opens). Tables show the
exact figures as the CSVs write them; chart coordinates are for the eye only.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import duckdb

from sql.reports import REPORTS, cell

MEASURES = (
    ("balance", "balance (free + locked)", "#1f77b4"),
    ("borrowed", "borrowed", "#d62728"),
    ("interest", "unpaid interest", "#ff7f0e"),
    ("net_equity", "net equity", "#2ca02c"),
)
# the columns each HTML table shows (the CSVs hold them all)
SHEET_COLUMNS = (
    "line",
    "asset",
    "assets",
    "principal",
    "unpaid_interest",
    "net_equity",
    "close_price",
    "assets_value",
    "liabilities_value",
    "net_equity_value",
    "valuation_note",
    "tie_status",
)
ROLLFORWARD_COLUMNS = (
    "asset",
    "principal_opening",
    "borrowed",
    "repaid_principal",
    "principal_closing",
    "interest_opening",
    "interest_accrued",
    "interest_paid_in_asset",
    "interest_paid_with_bnb",
    "interest_paid_by_liquidation",
    "interest_paid_with_points",
    "interest_closing",
    "tie_status",
)
CENT = Decimal("0.01")
MAX_BREAK_ROWS = 20  # the rest are in breaks.csv
BREAK_COLUMNS = (
    "kind",
    "asset",
    "status",
    "interval_start",
    "interval_end",
    "expected",
    "actual",
    "difference",
    "terms",
)
STATUS_COLOURS = {"tied": "#2ca02c", "unverified": "#7f7f7f", "provisional": "#ff7f0e"}
BREAK_COLOUR = "#d62728"
CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.meta { color: #666; } .cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 1rem; min-width: 12rem; }
.card b { display: block; font-size: 1.3rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f4f4f4; } td.text { text-align: left; }
.status { font-weight: bold; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5rem; }
"""


@dataclass(frozen=True)
class Rows:
    """A query's answer: column names and rows."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def only(self, columns: Sequence[str]) -> Rows:
        """These columns, in this order."""
        return Rows(tuple(columns), [tuple(r[c] for c in columns) for r in self.dicts()])


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> Rows:
    cursor = con.execute(sql, list(params))
    return Rows(tuple(d[0] for d in cursor.description or ()), cursor.fetchall())


def _report(con: duckdb.DuckDBPyConnection, view: str, account: str, month: str) -> Rows:
    """A report's rows in the order its CSV has them."""
    order = next(", ".join(r.order_by) for r in REPORTS if r.view == view)
    return _query(
        con,
        f"select * exclude (account, month) from {view} where account = ? and month = ?"
        f" order by {order}",
        [account, month],
    )


def statement_html(con: duckdb.DuckDBPyConnection, account: str, month: str) -> bytes:
    """The statement of `account` for `month` (YYYY-MM), as the bytes of one HTML file."""
    sheet = _report(con, "report_balance_sheet", account, month)
    total = next((r for r in sheet.dicts() if r["line"] == "total"), None)
    currency = total["report_currency"] if total else ""
    breaks = _report(con, "report_breaks", account, month)
    sections = [
        _header(account, month, currency),
        _cards(con, account, month, total, breaks),
        _reconciliation(con, account, month, sheet, breaks),
        _charts(con, account, month, currency),
        _section("Balance sheet at the month's end", _table(sheet.only(SHEET_COLUMNS))),
        _section(
            "Loan roll-forward",
            _table(
                _report(con, "report_loan_rollforward", account, month).only(ROLLFORWARD_COLUMNS)
            ),
        ),
        _section("Realized profit and loss (FIFO), per asset", _table(_pnl(con, account, month))),
        '<p class="meta">Every figure, with how it is tied to the snapshots, is in the CSVs '
        "beside this file (sql/REPORTS.md).</p>",
    ]
    body = "\n".join(sections)
    title = html.escape(f"{account} {month} statement")
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
    return page.encode("utf-8")


def _header(account: str, month: str, currency: str) -> str:
    return (
        f"<h1>Monthly statement: {html.escape(account)}, {month}</h1>"
        f'<p class="meta">Cross-margin account; values in {html.escape(currency)} at '
        "month-end closes. Made by margin-etl from the warehouse.</p>"
    )


def _cards(
    con: duckdb.DuckDBPyConnection,
    account: str,
    month: str,
    total: dict[str, Any] | None,
    breaks: Rows,
) -> str:
    money = _query(
        con,
        "select (select sum(interest_charged_value) from report_interest_expense"
        "        where account = ? and month = ?),"
        "       (select sum(realized_pnl_value) from report_realized_pnl"
        "        where account = ? and month = ?)",
        [account, month, account, month],
    ).rows[0]
    hard = sum(1 for row in breaks.dicts() if row["status"] == "break")
    cards = [
        ("Net equity", total["net_equity_value"] if total else None),
        ("Assets", total["assets_value"] if total else None),
        ("Liabilities", total["liabilities_value"] if total else None),
        ("Interest charged", money[0]),
        ("Realized PnL", money[1]),
        ("Breaks", hard),
    ]
    items = "".join(
        f'<div class="card">{html.escape(label)}<b>{html.escape(_glance(value))}</b></div>'
        for label, value in cards
    )
    note = '<p class="meta">Rounded to the cent; the tables and CSVs hold the exact figures.</p>'
    return f'<div class="cards">{items}</div>{note}'


def _glance(value: object) -> str:
    """A card's figure: thousands separated, to the cent (empty: a dash)."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return f"{value.quantize(CENT, rounding=ROUND_HALF_EVEN):,}"
    return str(value)


def _reconciliation(
    con: duckdb.DuckDBPyConnection, account: str, month: str, sheet: Rows, breaks: Rows
) -> str:
    failed = _query(
        con, "select model, rule, message from build_data_tests where failing_rows > 0", []
    )
    ties = Rows(
        ("asset", "tie_status", "tied_to", "tie_reason"),
        [
            (r["asset"], r["tie_status"], r["tied_to"], r["tie_reason"])
            for r in sheet.dicts()
            if r["line"] == "asset"
        ],
    )
    worst = next((r for r in sheet.dicts() if r["line"] == "total"), {"tie_status": "unverified"})
    colour = STATUS_COLOURS.get(worst["tie_status"], BREAK_COLOUR)
    parts = [
        f'<p>Month-end positions: <span class="status" style="color:{colour}">'
        f"{html.escape(worst['tie_status'])}</span>.</p>",
        _table(ties),
    ]
    if breaks.rows:
        shown = Rows(breaks.columns, breaks.rows[:MAX_BREAK_ROWS])
        more = len(breaks.rows) - len(shown.rows)
        parts.append("<p>What did not reconcile, with its causes (the terms of each side):</p>")
        parts.append(_table(shown.only(BREAK_COLUMNS)))
        if more > 0:
            parts.append(f"<p>… and {more} more in breaks.csv.</p>")
    else:
        parts.append("<p>No break and nothing provisional in intervals ending this month.</p>")
    if failed.rows:
        parts.append("<p>Data tests that failed when the warehouse was built:</p>")
        parts.append(_table(failed))
    return _section("Reconciliation", "\n".join(parts))


def _pnl(con: duckdb.DuckDBPyConnection, account: str, month: str) -> Rows:
    """Realized PnL summed per base asset and quote (every fill is in realized_pnl.csv)."""
    return _query(
        con,
        "select base_asset, quote_asset, count(*) as closing_fills, sum(closed_qty) as closed_qty,"
        " sum(realized_pnl_quote) as realized_pnl_quote, sum(realized_pnl_value)"
        " as realized_pnl_value, any_value(lot_method) as lot_method from report_realized_pnl"
        " where account = ? and month = ? group by all order by all",
        [account, month],
    )


def _charts(con: duckdb.DuckDBPyConnection, account: str, month: str, currency: str) -> str:
    days = _query(
        con,
        "select asset, as_of, balance, borrowed, interest, net_equity from statement_days"
        " where account = ? and month = ? and anchor_kind <> 'none' order by asset, day",
        [account, month],
    )
    snapshots = _query(
        con,
        "select asset, snapshot_at, balance, borrowed, interest, net_asset as net_equity"
        " from int_snapshot_points where account = ? and strftime(snapshot_at, '%Y-%m') = ?"
        " order by asset, snapshot_at, snapshot_source",
        [account, month],
    )
    breaks = _query(
        con,
        "select asset, interval_end, kind, status, difference from report_breaks"
        " where account = ? and month = ? order by asset, interval_end, kind, interval_start",
        [account, month],
    )
    interest = _query(
        con,
        "select day, asset, interest_charged_value from report_interest_expense"
        " where account = ? and month = ? and interest_charged_value is not null"
        " order by asset, day",
        [account, month],
    )
    snapshot_rows, break_rows = _by_asset(snapshots), _by_asset(breaks)
    figures = [
        _asset_figure(asset, rows, snapshot_rows.get(asset, []), break_rows.get(asset, []))
        for asset, rows in _by_asset(days).items()
    ]
    figures.append(_interest_figure(interest, currency))
    first = datetime.strptime(month, "%Y-%m")
    after = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    for figure in figures:
        figure.update_xaxes(type="date", range=[first, after])
    divs = [
        # fixed ids: the same warehouse gives the same bytes
        figure.to_html(
            full_html=False,
            include_plotlyjs=index == 0,
            div_id=f"chart-{index}",
            config={"displaylogo": False},
        )
        for index, figure in enumerate(figures)
    ]
    note = (
        "<p>Each day's end; circles are the snapshots' own values, red crosses the breaks "
        "(at the snapshot that closes the interval).</p>"
    )
    grid = "".join(f"<div>{div}</div>" for div in divs)
    return _section("Over the month", f'{note}<div class="charts">{grid}</div>')


def _by_asset(rows: Rows) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows.dicts():
        grouped[row["asset"]].append(row)
    return grouped


def _asset_figure(
    asset: str,
    days: list[dict[str, Any]],
    snapshots: list[dict[str, Any]],
    breaks: list[dict[str, Any]],
) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    for measure, label, colour in MEASURES:
        figure.add_scatter(
            x=[d["as_of"] for d in days],
            y=[d[measure] for d in days],
            name=label,
            mode="lines",
            line={"color": colour, "shape": "hv"},
        )
        if snapshots:
            figure.add_scatter(
                x=[s["snapshot_at"] for s in snapshots],
                y=[s[measure] for s in snapshots],
                name=f"{label} (snapshot)",
                mode="markers",
                marker={"color": colour, "symbol": "circle-open", "size": 9},
                showlegend=False,
            )
    for item in breaks:
        figure.add_vline(x=item["interval_end"], line={"color": BREAK_COLOUR, "dash": "dot"})
        figure.add_scatter(
            x=[item["interval_end"]],
            y=[0],
            mode="markers",
            marker={"color": BREAK_COLOUR, "symbol": "x", "size": 12},
            name=f"{item['kind']} {item['status']}: {cell(item['difference'])}",
        )
    return _layout(figure, f"{asset}: positions in {asset}")


def _interest_figure(interest: Rows, currency: str) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    for asset, rows in _by_asset(interest).items():
        figure.add_bar(
            x=[cell(r["day"]) for r in rows],
            y=[r["interest_charged_value"] for r in rows],
            name=asset,
        )
    figure.update_layout(barmode="stack")
    return _layout(figure, f"Interest expense by day, in {currency}")


def _layout(figure: Any, title: str) -> Any:
    figure.update_layout(
        title=title,
        template="simple_white",
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def _section(title: str, content: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{content}"


def _table(rows: Rows) -> str:
    if not rows.rows:
        return "<p>None this month.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=text' if isinstance(v, str) else ''}>{html.escape(cell(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
