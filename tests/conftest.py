"""Shared fixtures: each area keeps its fixtures in a plugin module of its own."""

import os

import pytest

# Prefect must never touch the developer's own home, nor phone home, from a test.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "false")

# A lake URL in the developer's shell would send every local test's lake to an object store.
os.environ.pop("MARGIN_ETL_LAKE_URL", None)

pytest_plugins = ["tests.fixtures_sim", "tests.fixtures_prefect"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a slow test run first: on several workers (`make test`), the longest files
    start at once instead of one of them running alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
