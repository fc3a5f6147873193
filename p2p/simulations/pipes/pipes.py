"""Connected socket pairs for simulated connections (geth's pipes.go).

geth's ``NetPipe`` is Go's in-memory ``net.Pipe``. Our Server runs the RLPx
handshake on a real socket (it sets timeouts and shuts it down to wake a
blocked read), so the in-memory pipe is a ``socket.socketpair()``: an AF_UNIX
stream pair inside this process that never touches a port. ``TCPPipe`` is a
TCP connection over 127.0.0.1, as in geth.
"""

from __future__ import annotations

import socket


def net_pipe():
    """Two connected in-process sockets (a Unix socket pair): ``(c1, c2)``."""
    p1, p2 = socket.socketpair()
    return p1, p2


def tcp_pipe():
    """Two ends of a TCP connection on 127.0.0.1: ``(accepted, dialed)``.

    geth accepts on a goroutine while it dials; the kernel completes a connect
    to a listening socket before accept is called, so here one thread does both.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        dconn = socket.create_connection(listener.getsockname()[:2])
        try:
            aconn = listener.accept()[0]
        except OSError:
            dconn.close()
            raise
        return aconn, dconn
    finally:
        listener.close()
