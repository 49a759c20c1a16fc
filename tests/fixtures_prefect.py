"""One Prefect API server for the whole test session (template DB, heartbeats off, drained)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flows.prefect_runtime import local_prefect_server


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a loopback Prefect server that flows under test report to."""
    with local_prefect_server(tmp_path_factory.mktemp("prefect-home")) as api_url:
        yield api_url
