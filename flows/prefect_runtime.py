"""A tamed local Prefect server: migrated once, started from a template, stopped cleanly.

Prefect's own temporary server migrates a fresh SQLite database on first use (10-14 s on two
cores, past its 20 s timeout under load) and prints pages of tracebacks when its log and event
workers outlive it. Here the database is migrated once into a template, each server starts from
a copy, and the workers are drained before the server stops, so a user sees a clean screen.
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1  # prctl(2)

# Settings that must be in the environment before prefect is imported by anything.
QUIET_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def quiet_prefect_environment() -> None:
    """Default Prefect to quiet, offline-friendly settings (explicit user settings win)."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "margin-etl" / "prefect"


def template_database(directory: Path | None = None) -> Path:
    """A fully migrated Prefect SQLite database, created on first use (about 10 s, once)."""
    directory = directory or cache_dir()
    template = directory / "template.db"
    if template.exists():
        return template
    directory.mkdir(parents=True, exist_ok=True)
    building = directory / f"template.{os.getpid()}.db"
    env = {
        **os.environ,
        **QUIET_ENVIRONMENT,
        "PREFECT_HOME": str(directory),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{building}",
    }
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.replace(building, template)
    return template


@contextlib.contextmanager
def local_prefect_server(home: Path, *, heartbeats: bool = False) -> Iterator[str]:
    """Run a Prefect API server on loopback for the duration; yields its API URL.

    The database lives in `home` (copied from the template when new). Heartbeats are off by
    default: they add ~1 s to every synchronous flow and matter only to long-lived workers.
    """
    quiet_prefect_environment()
    import prefect.settings as ps

    home.mkdir(parents=True, exist_ok=True)
    database = home / "prefect.db"
    if not database.exists():
        shutil.copyfile(template_database(), database)
    updates: dict[Any, Any] = {
        ps.PREFECT_HOME: str(home),
        ps.PREFECT_SERVER_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{database}",
    }
    if not heartbeats:
        updates[ps.PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
    with ps.temporary_settings(updates=updates):
        _silence_server_logger()
        server = _quiet_server(home / "server.log")
        server.start(timeout=120)
        try:
            with ps.temporary_settings(updates={ps.PREFECT_API_URL: server.api_url}):
                yield server.api_url
                drain_prefect_workers()
        finally:
            _silence_server_logger()
            server.stop()


def _quiet_server(log_path: Path) -> Any:
    """Prefect's SubprocessASGIServer, with the server's output sent to a log file.

    Its own launcher inherits our terminal, where the server's shutdown prints cancelled-task
    tracebacks; the command line is the same as Prefect's, only the output goes elsewhere.
    """
    import prefect
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    class QuietSubprocessServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
            env = {
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            }
            args = [sys.executable, "-m", "uvicorn", "--app-dir"]
            args += [str(prefect.__module_path__.parent), "--factory"]
            args += ["prefect.server.api.server:create_app", "--host", "127.0.0.1"]
            args += ["--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
            try:
                return subprocess.Popen(
                    args, env=env, stdout=log, stderr=log, preexec_fn=_stop_with_parent
                )
            finally:
                log.close()

    return QuietSubprocessServer()


def _stop_with_parent() -> None:
    """In the server's process before it starts: be stopped when the command that started it
    dies, even by kill -9 (Linux's parent-death signal), so no server outlives its run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def drain_prefect_workers() -> None:
    """Flush logs and events to the server before it stops (else: a minute of retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        with contextlib.suppress(RuntimeError):
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        drained: Any = EventsWorker.drain_all()
        if inspect.isawaitable(drained):
            await drained

    run_coro_as_sync(drain())


def _silence_server_logger() -> None:
    """Prefect announces starting/stopping its server and links to a UI that is off here."""
    for name in ("prefect", "prefect.server", "prefect.subprocess_server", "prefect.engine"):
        logging.getLogger(name).setLevel(logging.WARNING)
