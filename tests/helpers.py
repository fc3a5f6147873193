"""Small helpers shared by the network tests (loopback only, no sleeps)."""

from __future__ import annotations

import socket
import threading

from p2p import crypto, rlpx


def run_parallel(fn, items, timeout=60.0, name="test.parallel"):
    """Run ``fn(item)`` for every item on its own thread; re-raise the first failure.

    Fails if a thread is still running after ``timeout`` seconds.
    """
    errors = []

    def run(it):
        try:
            fn(it)
        except BaseException as e:  # re-raised below, on the test's thread
            errors.append(e)

    ths = [threading.Thread(target=run, args=(it,), name=name) for it in items]
    for th in ths:
        th.start()
    for th in ths:
        th.join(timeout)
    assert not any(th.is_alive() for th in ths), "%s: threads did not finish in %.0fs" % (name, timeout)
    if errors:
        raise errors[0]


def capture_auth(dest, timeout=5.0) -> bytes:
    """The bytes of a valid EIP-8 auth message for ``dest``, captured off a socket pair.

    The initiator never gets an ack: its handshake fails when the pair is shut down.
    """
    a, b = socket.socketpair()

    def initiator():
        try:
            rlpx.new_rlpx(a).do_enc_handshake(crypto.generate_key(), dest)
        except Exception:  # expected: nobody answers
            pass

    th = threading.Thread(target=initiator, name="test.initiator", daemon=True)
    th.start()
    try:
        b.settimeout(timeout)
        head = b.recv(2)
        size = int.from_bytes(head, "big")
        body = b""
        while len(body) < size:
            chunk = b.recv(size - len(body))
            assert chunk, "initiator closed before sending its auth"
            body += chunk
        b.shutdown(socket.SHUT_RDWR)
        th.join(timeout)
    finally:
        a.close()
        b.close()
    return head + body
