"""Run the simulator: `serve()` blocks (the CLI), `start_simulator()` runs it in a background
thread on a free loopback port (tests, benchmarks, the demo)."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import uvicorn

from simulator import auth
from simulator.app import SimConfig, SimulatorApp, create_app
from simulator.contract import ExchangeProtocol
from simulator.endpoints import parse_api_generation
from simulator.faults import PROFILES, FaultProfile
from simulator.limits import IP_LIMIT, WINDOW_MS

BANNER = "margin-etl simulator listening on"


def build_exchange(scenario: str, seed: int, start_ms: int | None) -> ExchangeProtocol:
    """The scenario's exchange, live. Without `start_ms` the server clock is the wall clock
    (the history ends at this hour; the engine lives through the minutes since)."""
    from simulator.ledger import wall_clock_ms
    from simulator.scenarios import build_exchange as generate

    exchange = generate(scenario, seed, start_ms)
    if start_ms is None:
        with exchange.lock:
            exchange.advance_clock(max(0, wall_clock_ms() - exchange.now_ms()))
            exchange.catch_up()
    return exchange


def make_config(
    *,
    seed: int,
    faults: str | FaultProfile,
    api_key: str,
    api_secret: str,
    truth_dir: str | Path | None,
    weight_limit: int,
    weight_window_ms: int,
    latency_ms: int,
    credentials: tuple[auth.ApiCredential, ...] | None = None,
    ban_after_429s: int | None = None,
    seconds_timestamps: bool | None = None,
    api_generation: str = "current",
    controls: bool = True,
) -> SimConfig:
    """The server's configuration; ValueError for an unknown API generation."""
    return SimConfig(
        credentials=credentials or auth.default_credentials(api_key, api_secret),
        seed=seed,
        faults=faults,
        weight_limit=weight_limit,
        weight_window_ms=weight_window_ms,
        latency_ms=latency_ms,
        truth_dir=Path(truth_dir) if truth_dir is not None else None,
        ban_after_429s=ban_after_429s,
        seconds_timestamps=seconds_timestamps,
        api_generation=parse_api_generation(api_generation),
        controls=controls,
    )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


@dataclass(frozen=True)
class ServeOptions:
    """What `serve` is asked for, checked before the (slow) history is built."""

    host: str
    port: int
    scenario: str
    faults: str
    truth_dir: Path | None
    weight_limit: int
    weight_window_ms: int
    latency_ms: int
    allow_remote: bool
    controls: bool | None

    def check(self) -> None:
        """ValueError, with a message for a person, for the first option that cannot work."""
        from simulator.scenarios import SCENARIOS

        problems = (
            (not 0 <= self.port <= 65535, f"--port {self.port}: use 0-65535 (0 picks a free one)"),
            (self.scenario not in SCENARIOS, _unknown("scenario", self.scenario, SCENARIOS)),
            (self.faults not in PROFILES, _unknown("fault profile", self.faults, PROFILES)),
            (self.weight_limit < 1, "--weight-limit must be at least 1"),
            (self.weight_window_ms < 1, "--weight-window-ms must be at least 1"),
            (self.latency_ms < 0, "--latency-ms must not be negative"),
            (
                not is_loopback(self.host) and not self.allow_remote,
                f"--host {self.host} is reachable from other machines, and the simulator's keys"
                " are public: add --allow-remote to mean it",
            ),
            (
                self.truth_dir is not None
                and self.truth_dir.exists()
                and not self.truth_dir.is_dir(),
                f"--truth-dir {self.truth_dir} is a file, not a directory",
            ),
        )
        for failed, message in problems:
            if failed:
                raise ValueError(message)

    @property
    def serves_controls(self) -> bool:
        """The /_sim/* controls: on loopback by default, elsewhere only when asked for."""
        return self.controls if self.controls is not None else is_loopback(self.host)


def _unknown(what: str, value: str, known: Iterable[str]) -> str:
    return f"unknown {what} {value!r}: use {', '.join(known)}"


class _Server(uvicorn.Server):
    """uvicorn's server, telling a callback when it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._on_started()


def _uvicorn_config(app: SimulatorApp, access_log: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        access_log=access_log,
        log_level="info" if access_log else "warning",
        proxy_headers=False,
        server_header=False,
        date_header=True,
        timeout_keep_alive=30,
    )


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio only sets TCP_NODELAY on IPPROTO_TCP sockets, and without
    # it every answer waits ~40 ms for a delayed ACK (headers and body are two writes)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = 1,
    scenario: str = "default",
    faults: str = "none",
    api_key: str = auth.DEFAULT_API_KEY,
    api_secret: str = auth.DEFAULT_API_SECRET,
    truth_dir: str | Path | None = None,
    weight_limit: int = IP_LIMIT,
    weight_window_ms: int = WINDOW_MS,
    latency_ms: int = 0,
    start_ms: int | None = None,
    *,
    api_generation: str = "current",
    access_log: bool = False,
    allow_remote: bool = False,
    controls: bool | None = None,
) -> None:
    """Serve until interrupted; prints one line whose last token is the URL. `api_generation`
    is the API served: current (today's Binance), seed (the 2019 document's) or both.

    ValueError (before anything is built) for options that cannot work, and for a non-loopback
    `host` without `allow_remote`. The /_sim/* controls are served on loopback, or when
    `controls` is True.
    """
    options = ServeOptions(
        host,
        port,
        scenario,
        faults,
        Path(truth_dir) if truth_dir is not None else None,
        weight_limit,
        weight_window_ms,
        latency_ms,
        allow_remote,
        controls,
    )
    options.check()
    parse_api_generation(api_generation)  # fail before the history is built
    if not is_loopback(host):
        print(
            f"warning: the simulator listens on {host}, reachable from other machines; "
            f"its /_sim/* controls are {'on' if options.serves_controls else 'off'}",
            file=sys.stderr,
            flush=True,
        )
    exchange = build_exchange(scenario, seed, start_ms)
    # a process of its own: keep the garbage collector off the (large, long-lived) history
    gc.collect()
    gc.freeze()
    config = make_config(
        seed=seed,
        faults=faults,
        api_key=api_key,
        api_secret=api_secret,
        truth_dir=truth_dir,
        weight_limit=weight_limit,
        weight_window_ms=weight_window_ms,
        latency_ms=latency_ms,
        api_generation=api_generation,
        controls=options.serves_controls,
    )
    app = create_app(exchange, config)
    if config.truth_dir is not None:
        app.write_truth(config.truth_dir)
    sock = _listening_socket(host, port)
    server = _Server(
        _uvicorn_config(app, access_log), lambda: print(f"{BANNER} {_url(sock)}", flush=True)
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal after a graceful shutdown
    finally:
        sock.close()
        if config.truth_dir is not None:
            app.write_truth(config.truth_dir)


class RunningSimulator:
    """A simulator serving in a background thread. `.url`, `.exchange`, `.app`, `.stop()`."""

    def __init__(self, app: SimulatorApp, server: uvicorn.Server, sock: socket.socket) -> None:
        self.app = app
        self.exchange = app.exchange
        self.url = _url(sock)
        self._server = server
        self._sock = sock
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()
        self._started.wait()
        if not self._server.started:
            self._thread.join()
            raise RuntimeError("the simulator did not start") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
        finally:
            self._started.set()

    def stop(self) -> None:
        """Stop serving (rewriting the truth dir if one is configured) and wait for the thread."""
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join()
        self._thread = None
        self._sock.close()
        truth_dir = self.app.config.truth_dir
        if truth_dir is not None:
            self.app.write_truth(truth_dir)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 1,
    scenario: str = "default",
    faults: str | FaultProfile = "none",
    api_key: str = auth.DEFAULT_API_KEY,
    api_secret: str = auth.DEFAULT_API_SECRET,
    truth_dir: str | Path | None = None,
    weight_limit: int = IP_LIMIT,
    weight_window_ms: int = WINDOW_MS,
    latency_ms: int = 0,
    start_ms: int | None = None,
    *,
    exchange: ExchangeProtocol | None = None,
    credentials: tuple[auth.ApiCredential, ...] | None = None,
    ban_after_429s: int | None = None,
    seconds_timestamps: bool | None = None,
    api_generation: str = "current",
    access_log: bool = False,
    controls: bool = True,
) -> RunningSimulator:
    """Start serving in a background thread; returns once the server accepts connections.

    `exchange` serves a ready-made exchange instead of building `scenario`; `credentials`
    replaces the default keys; `ban_after_429s` turns the 418 mode on; `seconds_timestamps`
    forces the transfer rows' unit; `api_generation` chooses the API served: `current` (the
    default: today's Binance, the seed's removed endpoints answer 404), `seed` or `both`.
    """
    parse_api_generation(api_generation)  # fail before the history is built
    ledger = exchange if exchange is not None else build_exchange(scenario, seed, start_ms)
    config = make_config(
        seed=seed,
        faults=faults,
        api_key=api_key,
        api_secret=api_secret,
        truth_dir=truth_dir,
        weight_limit=weight_limit,
        weight_window_ms=weight_window_ms,
        latency_ms=latency_ms,
        credentials=credentials,
        ban_after_429s=ban_after_429s,
        seconds_timestamps=seconds_timestamps,
        api_generation=api_generation,
        controls=controls,
    )
    app = create_app(ledger, config)
    if config.truth_dir is not None:
        app.write_truth(config.truth_dir)
    sock = _listening_socket(host, port)
    running: RunningSimulator | None = None

    def started() -> None:
        assert running is not None
        running._started.set()

    server = _Server(_uvicorn_config(app, access_log), started)
    running = RunningSimulator(app, server, sock)
    running._start()
    return running
