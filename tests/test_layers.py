"""The house's floors: each package imports only the packages beneath it.

From the ground up: ``models`` (schemas, rows, time), ``connectors`` (the Binance client),
``storage`` (the data dir: lake, ledger, lock), ``sql`` (DuckDB models), ``flows`` (the export
pipeline and Prefect), ``cli`` (the `margin-etl` command). The simulator stands apart: it imports
no floor, and only the command line starts it. ``bench/`` and ``tests/`` may import anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOORS = ("models", "connectors", "storage", "sql", "flows", "cli")
APART = "simulator"
PACKAGES = (*FLOORS, APART)
# folders of the repository that are no floor of the house
OUTSIDE = {"tests", "bench"}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in a file, at any depth (TYPE_CHECKING too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def may_import(package: str) -> set[str]:
    """The packages that ``package``'s files may import: itself and what lies beneath it."""
    if package == APART:
        return {APART}
    beneath = set(FLOORS[: FLOORS.index(package) + 1])
    return beneath | {APART} if package == "cli" else beneath


def upward_imports(package: str) -> list[str]:
    found = []
    allowed = may_import(package)
    for path in sorted((REPO / package).rglob("*.py")):
        for line, module in imported_modules(path):
            top = module.partition(".")[0]
            if top in PACKAGES and top not in allowed:
                found.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return found


def test_no_import_runs_up_the_floors() -> None:
    assert [found for package in PACKAGES for found in upward_imports(package)] == []


def test_every_package_stands_on_a_floor() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages - OUTSIDE == set(PACKAGES)


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import storage\n\ndef later() -> None:\n    from flows.export import x\n")
    found = [m for _, m in imported_modules(probe) if m.partition(".")[0] not in may_import("sql")]
    assert found == ["flows.export"]
