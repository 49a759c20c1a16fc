"""Each lower package has one face: its ``__init__`` lists what it offers in ``__all__``, and
the packages above import those names from the face, never from a module behind it (httpx's
``tests/test_exported_members.py``). ``bench/`` and ``tests/`` may reach behind a face.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_layers import FLOORS, REPO, imported_modules

FACES = ("models", "connectors", "storage", "sql")


def public_names(package: ModuleType) -> list[str]:
    """What the face defines or imports for others: its public names, modules left out."""
    return sorted(
        (
            name
            for name, value in vars(package).items()
            if not name.startswith("_") and not isinstance(value, ModuleType)
        ),
        key=str.casefold,
    )


@pytest.mark.parametrize("face", FACES)
def test_all_lists_exactly_what_the_face_offers(face: str) -> None:
    package = importlib.import_module(face)
    assert sorted(package.__all__, key=str.casefold) == public_names(package)


def reaches_behind(path: Path, package: str) -> list[str]:
    """Imports in ``path`` of another face's inner modules or of names it does not offer."""
    found = []
    for line, module, names in _imports(path):
        face = module.partition(".")[0]
        if face not in FACES or face == package:
            continue
        offered = set(importlib.import_module(face).__all__)
        if module != face or not set(names) <= offered:
            found.append(f"{path.relative_to(REPO)}:{line} {module}: {', '.join(names)}")
    return found


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, ["*"]) for a in node.names if "." in a.name]
    return found


def test_packages_above_import_only_what_a_face_offers() -> None:
    found = [
        item
        for package in FLOORS
        for path in sorted((REPO / package).rglob("*.py"))
        for item in reaches_behind(path, package)
    ]
    assert found == []


def test_imported_modules_sees_function_level_imports() -> None:
    lines = [module for _, module in imported_modules(REPO / "cli" / "main.py")]
    assert "flows.export" in lines  # imported inside a command, for a fast start
