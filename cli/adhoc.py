"""`margin-etl sql`: a read-only query of the warehouse, printed as a table, CSV or JSON."""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from sql import Answer, WarehouseError, cell, csv_bytes, open_warehouse
from storage import UserError


class Output(StrEnum):
    """How the answer is printed."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def run_sql(data_dir: Path, query: str) -> Answer:
    """The query's answer; a mistake (no warehouse, bad SQL, a write) is a UserError."""
    try:
        with open_warehouse(data_dir) as warehouse:
            return warehouse.answer(query)
    except WarehouseError as exc:
        raise UserError(str(exc)) from None


def json_value(value: object) -> Any:
    """JSON keeps integers, booleans and null; exact decimals and times go as report text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal | date):
        return cell(value)
    return str(value)


def json_bytes(answer: Answer) -> bytes:
    records = [
        {name: json_value(value) for name, value in zip(answer.columns, row, strict=True)}
        for row in answer.rows
    ]
    return orjson.dumps(records, option=orjson.OPT_INDENT_2) + b"\n"


def answer_table(answer: Answer) -> Table:
    table = Table(show_lines=False)
    for name in answer.columns:
        table.add_column(name, overflow="fold")
    for row in answer.rows:
        table.add_row(*(cell(value) for value in row))
    return table


def sql_cli(data_dir: Path, query: str, output: Output, console: Console | None = None) -> int:
    answer = run_sql(data_dir, query)
    if output is Output.CSV:
        sys.stdout.buffer.write(csv_bytes(answer.columns, answer.rows))
    elif output is Output.JSON:
        sys.stdout.buffer.write(json_bytes(answer))
    else:
        console = console or Console()
        console.print(answer_table(answer))
        console.print(f"{len(answer.rows)} row(s)", style="dim")
    sys.stdout.flush()
    return 0


def format_of(as_csv: bool, as_json: bool) -> Output:
    if as_csv and as_json:
        raise UserError("choose one of --csv and --json")
    return Output.CSV if as_csv else Output.JSON if as_json else Output.TABLE
