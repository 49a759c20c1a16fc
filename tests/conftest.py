"""Shared fixtures: each area keeps its fixtures in a plugin module of its own."""

pytest_plugins: list[str] = []
