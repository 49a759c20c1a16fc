"""A real headless Chromium (Debian's package) driven over the DevTools protocol, no extra driver.

`open_page(path)` loads a local file and reports what a person's browser would have done:
every request it made, every console error or uncaught exception, how many marks each chart
drew, and a screenshot. Chromium runs with no name resolution (`--host-resolver-rules`), so a
page that tried to reach the network could not leak, and would show up as a request and an
error. `python -m tests.browser PAGE.html OUT.png [HEIGHT]` saves a page's screenshot (docs/).
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect
from websockets.sync.connection import Connection

CHROMIUM = "chromium"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
# per chart: the marks it drew (line paths with a shape, bars, points) in its SVG
COUNT_MARKS = """
Array.from(document.querySelectorAll('.js-plotly-plot')).map(plot =>
  Array.from(plot.querySelectorAll('svg.main-svg .trace path, svg.main-svg .point'))
    .filter(mark => (mark.getAttribute('d') || '').length > 2).length)
"""
TWO_FRAMES = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


@dataclass
class PageVisit:
    """What happened when the page was opened."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    marks_per_chart: list[int] = field(default_factory=list)
    screenshot: bytes = b""

    @property
    def remote_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)]


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (CI is a clean Debian, root)."""
    found = shutil.which(CHROMIUM)
    if found:
        return found
    apt = ["apt-get", "-q", "-y"]
    subprocess.run([*apt[:2], "update"], check=True, capture_output=True)
    subprocess.run(
        [*apt, "install", "--no-install-recommends", CHROMIUM],
        check=True,
        capture_output=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    found = shutil.which(CHROMIUM)
    if not found:
        raise RuntimeError("apt-get installed chromium but it is not on PATH")
    return found


class DevTools:
    """One page's DevTools session: commands answered in order, events kept as they come."""

    def __init__(self, socket: Connection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        """Read events until `method` arrives (kept with the others)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message: dict[str, Any] = json.loads(self.socket.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message

    def evaluate(self, expression: str) -> Any:
        answer = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")


@contextmanager
def _browser(executable: str) -> Iterator[str]:
    """A headless Chromium; yields its DevTools HTTP address once it listens."""
    # a crashed browser's helpers may still write into the profile: not a test failure
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield _devtools_address(process)
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait()


def _devtools_address(process: subprocess.Popen[str]) -> str:
    """Chromium prints `DevTools listening on ws://HOST:PORT/...` once it accepts sessions."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("DevTools listening on ws://"):
            # keep reading what it logs, so a full pipe never stalls it
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return line.split("ws://", 1)[1].split("/", 1)[0]
    raise RuntimeError(f"chromium exited ({process.wait()}) before listening")


def open_page(
    path: Path, executable: str | None = None, shot_height: int | None = None
) -> PageVisit:
    """Open `path` in headless Chromium; wait for its load and two frames; report.

    The screenshot is the whole page, or its top `shot_height` CSS pixels.
    """
    with _browser(executable or ensure_chromium()) as address:
        pages = httpx.get(f"http://{address}/json/list").json()
        target = next(p for p in pages if p["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            tools = DevTools(socket)
            for domain in ("Network", "Runtime", "Log", "Page"):
                tools.call(f"{domain}.enable")
            tools.call("Page.navigate", url=path.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            tools.evaluate(TWO_FRAMES)
            visit = PageVisit(marks_per_chart=list(tools.evaluate(COUNT_MARKS)))
            clip = {"x": 0, "y": 0, "width": 1280, "height": shot_height, "scale": 1}
            shot = tools.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                **({"clip": clip} if shot_height else {}),
            )
            visit.screenshot = base64.b64decode(shot["data"])
            _read_events(tools.events, visit)
            # a graceful close: the browser's own processes end before its profile goes
            socket.send(json.dumps({"id": next(tools.ids), "method": "Browser.close"}))
    return visit


def _read_events(events: list[dict[str, Any]], visit: PageVisit) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            visit.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            visit.errors.append(str(params["exceptionDetails"].get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            visit.errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            visit.errors.append(str(params["entry"].get("text")))


if __name__ == "__main__":
    page, out = Path(sys.argv[1]), Path(sys.argv[2])
    seen = open_page(page, shot_height=int(sys.argv[3]) if len(sys.argv) > 3 else None)
    out.write_bytes(seen.screenshot)
    print(f"{out}: {len(seen.screenshot)} bytes; charts drew {seen.marks_per_chart} marks")
