"""Finding a node's WebSocket RPC address in its log output (geth's adapters/ws.go)."""

from __future__ import annotations

import queue
import re
import threading

wsAddrPattern = re.compile(r"ws://[\d.:]+")


def match_ws_addr(line: str):
    """``(address, True)`` for the log line announcing the WebSocket endpoint, else ``("", False)``."""
    if "WebSocket endpoint opened" not in line:
        return "", False
    m = wsAddrPattern.search(line)
    return (m.group(0) if m else ""), True


def find_ws_addr(r, timeout: float) -> str:
    """Read lines from ``r`` (a text or binary stream) until one gives the WebSocket address.

    Raises ValueError("empty result") if the stream ends first (or the line has
    no address) and TimeoutError("timed out") after ``timeout`` seconds. The
    reader thread ends when the stream does.
    """
    ch: "queue.Queue" = queue.Queue()

    def scan():
        try:
            for line in r:
                if isinstance(line, bytes):
                    line = line.decode("utf-8", "replace")
                addr, ok = match_ws_addr(line)
                if ok:
                    ch.put(addr)
                    return
        except (OSError, ValueError):  # the stream was closed under us
            pass
        ch.put("")

    threading.Thread(target=scan, name="adapters.findWSAddr", daemon=True).start()
    try:
        ws_addr = ch.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError("timed out") from None
    if ws_addr == "":
        raise ValueError("empty result")
    return ws_addr
