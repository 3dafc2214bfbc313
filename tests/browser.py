"""Headless Chromium driven over the DevTools protocol, for the HTML pack tests.

Loads a page, records every network request it makes, takes a screenshot and prints to PDF.
Flags as in DESIGN.md (and no background networking, so the browser itself stays quiet).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)


@dataclass
class Page:
    title: str
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    pdf: bytes = b""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def visit(path: Path, *, width: int = 1200, height: int = 1600, pdf: bool = False) -> Page:
    """Open ``path`` in headless Chromium and report what happened."""
    assert CHROMIUM, "chromium is not installed (.ci/run installs it)"
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="greenscreen-chromium-")
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--remote-allow-origins=*",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ws_url = _page_socket(port)
        conn = websocket.create_connection(ws_url, timeout=30)
        calls = _Calls(conn)
        calls.send("Network.enable")
        calls.send("Page.enable")
        calls.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        calls.send("Page.navigate", url=path.resolve().as_uri())
        calls.wait_for("Page.loadEventFired")
        time.sleep(0.3)
        title = calls.send("Runtime.evaluate", expression="document.title")["result"]["value"]
        shot = base64.b64decode(calls.send("Page.captureScreenshot", format="png")["data"])
        printed = b""
        if pdf:
            printed = base64.b64decode(
                calls.send("Page.printToPDF", printBackground=True, preferCSSPageSize=True)["data"]
            )
        conn.close()
        return Page(title=title, requests=calls.requests, screenshot=shot, pdf=printed)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


def _page_socket(port: int) -> str:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as reply:
                targets = json.load(reply)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("chromium did not start")


class _Calls:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.next_id = 0
        self.requests: list[str] = []
        self.events: list[str] = []

    def _handle(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])
        if method:
            self.events.append(method)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.conn.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.conn.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._handle(message)

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while event not in self.events:
            if time.time() > deadline:
                raise TimeoutError(event)
            self._handle(json.loads(self.conn.recv()))
