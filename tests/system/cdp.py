"""A small Chrome DevTools Protocol client: drive a headless Debian chromium over one websocket.

Only what the UI tests need: open a page, evaluate JavaScript, type, press keys, and take a
screenshot. The browser is the system's (``/usr/bin/chromium``); nothing is downloaded.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from websockets.sync.client import connect

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

CHROMIUM_NAMES = ("chromium", "chromium-browser")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
)


def find_chromium() -> str | None:
    """Return the path of the system's chromium, or ``None`` when it is not installed."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class CdpError(RuntimeError):
    """The browser answered a command with an error, or a page check timed out."""


class Browser:
    """A headless chromium with one page, driven through the DevTools protocol.

    :param executable: the chromium binary.
    :param timeout: seconds to wait for the browser and for each command.
    """

    def __init__(self, *, executable: str, timeout: float = 30.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="cdp-profile-", ignore_cleanup_errors=True)
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: Any = None
        self._closing = ExitStack()
        self._ids = itertools.count(1)

    def start(self) -> Self:
        """Start chromium, open a blank page and attach to it."""
        self._process = subprocess.Popen(
            [self.executable, *_FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CdpError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout).json()
        page = next(target for target in pages if target["type"] == "page")
        self._socket = self._closing.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=self.timeout)
        )
        self.send("Page.enable")
        self.send("Runtime.enable")
        return self

    def stop(self) -> None:
        """Close the page connection and stop chromium."""
        self._closing.close()
        self._socket = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            # Renderer and helper processes share the browser's session: stop any that linger.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process = None
        self._profile.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, skipping the events that arrive meanwhile.

        :param method: DevTools method, e.g. ``Page.navigate``.
        :param params: its parameters.
        """
        command_id = next(self._ids)
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = json.loads(self._socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") != command_id:
                continue
            if "error" in message:
                raise CdpError(f"{method}: {message['error']}")
            return message.get("result", {})

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait until the document has loaded.

        :param url: the address to open.
        """
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (awaiting a promise) and return its JSON value.

        :param expression: the JavaScript expression.
        """
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise CdpError(
                f"JavaScript error: {result['exceptionDetails'].get('exception', {}).get('description')}"
            )
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None) -> Any:
        """Evaluate ``expression`` until it is truthy and return its value.

        :param expression: the JavaScript condition.
        :param timeout: seconds to wait; defaults to the browser's timeout.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CdpError(f"timed out waiting for: {expression}")
            time.sleep(0.2)

    def type_text(self, text: str) -> None:
        """Type text into the focused element.

        :param text: the characters to insert.
        """
        self.send("Input.insertText", text=text)

    def press(self, key: str, *, code: str | None = None, key_code: int = 0) -> None:
        """Press and release one key in the focused element.

        :param key: the key's name, e.g. ``Enter``.
        :param code: the physical key code; defaults to ``key``.
        :param key_code: the legacy key code (13 for Enter).
        """
        for event in ("keyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent",
                type=event,
                key=key,
                code=code or key,
                windowsVirtualKeyCode=key_code,
                nativeVirtualKeyCode=key_code,
            )

    def click(self, x: float, y: float) -> None:
        """Click at a point of the page.

        :param x: horizontal position in CSS pixels.
        :param y: vertical position in CSS pixels.
        """
        for event in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=event, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the page.

        :param path: where to write it.
        """
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
