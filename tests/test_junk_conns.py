"""Junk connections against a live node (issue 9, item 8).

An attacker opens connections to a ``p2pnode`` process on 127.0.0.1, writes 0 to
2,000 random bytes on each, half-closes it and waits for the node to close its
side (EOF or reset). "Absorbed" is the wall time from the first connect until the
node has closed the last of them. While the flood runs, an honest peer keeps
running both handshakes with the node, one after another; each must succeed.

``make test`` runs 200 connections; ``make soak`` runs
``python -m tests.test_junk_conns --conns 2000`` (issue 9's size, goal < 0.5 s)
and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import selectors
import socket
import sys
import threading
import time

from p2p import crypto, rlpx
from p2p.discover.node import Node as DNode, pubkey_id
from p2p.peer import ProtoHandshake
from p2p.protocol import Cap
from tests.helpers import P2PNodeProcess

WAIT = 60.0  # upper bound for a wait on a condition; never a sleep
HONEST_EVERY = 0.02  # seconds between the honest peer's connections
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_node(*args):
    """A p2pnode subprocess (no discovery, no dialing) with its enode URL read."""
    node = P2PNodeProcess("--nodial", *args, wait=WAIT, name="test.junk")
    node.enode()
    return node


def honest_handshake(node, after_connect=None) -> float:
    """Both handshakes with ``node`` as an honest peer; returns the seconds they took.

    ``after_connect`` (if given) is called between the TCP connect and the handshakes.
    """
    t0 = time.monotonic()
    prv = crypto.generate_key()
    fd = socket.create_connection((str(node.ip), node.tcp), timeout=WAIT)
    if after_connect is not None:
        after_connect()
    t = rlpx.new_rlpx(fd)
    try:
        t.do_enc_handshake(prv, DNode(id=node.id))
        their = t.do_proto_handshake(ProtoHandshake(
            version=5, name="honest", caps=[Cap("chat", 1)], id=pubkey_id(prv.public_key)))
        assert bytes(their.id) == bytes(node.id)
    finally:
        t.close(None)
    return time.monotonic() - t0


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def flood(node, conns: int, seed: int = 1) -> dict:
    """Send ``conns`` junk connections to ``node`` while an honest peer connects; the figures."""
    _raise_fd_limit(conns + 256)
    rnd = random.Random(seed)
    addr = (str(node.ip), node.tcp)
    sel = selectors.DefaultSelector()
    open_socks = 0
    done = threading.Event()
    honest: list = []
    honest_errors: list = []

    connected = threading.Event()
    flooding = threading.Event()

    def first_connected():
        connected.set()
        flooding.wait(WAIT)  # the first handshake runs while the flood starts

    def honest_loop():
        hook = first_connected
        while not done.is_set():
            start = time.monotonic()
            try:
                honest.append((start, honest_handshake(node, hook)))
            except Exception as err:  # reported by the caller, the loop goes on
                honest_errors.append(err)
            hook = None
            done.wait(HONEST_EVERY)

    def reap(timeout):
        nonlocal open_socks
        for key, _ in sel.select(timeout):
            s = key.fileobj
            try:
                if s.recv(4096):
                    continue
            except BlockingIOError:
                continue
            except OSError:
                pass  # reset: closed too
            sel.unregister(s)
            s.close()
            open_socks -= 1

    ht = threading.Thread(target=honest_loop, name="test.junk.honest", daemon=True)
    ht.start()
    assert connected.wait(WAIT), "the honest peer could not connect"
    t0 = time.monotonic()
    flooding.set()
    for _ in range(conns):
        s = socket.create_connection(addr, timeout=WAIT)
        data = rnd.randbytes(rnd.randint(0, 2000))
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the node refused the bytes: it has closed already
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        open_socks += 1
        reap(0)
    sent = time.monotonic() - t0
    deadline = t0 + WAIT
    while open_socks and time.monotonic() < deadline:
        reap(deadline - time.monotonic())
    absorbed = time.monotonic() - t0
    left = open_socks
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    t_end = time.monotonic()
    done.set()
    ht.join(WAIT)
    # Handshakes that overlapped the flood (the first one always does).
    n_during = sum(1 for start, took in honest if start < t_end and start + took > t0)
    after = honest_handshake(node)  # and the node still takes an honest peer afterwards
    return {"conns": conns, "sent_s": sent, "absorbed_s": absorbed, "left_open": left,
            "honest_during": n_during, "honest_errors": honest_errors,
            "honest_max_s": max(took for _, took in honest) if honest else None, "honest_after_s": after}


def report(fig: dict, cpu: float) -> str:
    return ("junk connections: %d absorbed in %.3f s wall (all sent after %.3f s), node CPU %.3f s; "
            "honest handshakes during the flood: %d (slowest %s), errors %d, after it %.3f s" % (
                fig["conns"], fig["absorbed_s"], fig["sent_s"], cpu, fig["honest_during"],
                "-" if fig["honest_max_s"] is None else "%.3f s" % fig["honest_max_s"],
                len(fig["honest_errors"]), fig["honest_after_s"]))


def run(conns: int) -> dict:
    node = start_node()
    try:
        honest_handshake(node.node)  # warm up: imports and first handshake out of the figure
        cpu0 = node.cpu_seconds()
        fig = flood(node.node, conns)
        fig["node_cpu_s"] = node.cpu_seconds() - cpu0
    finally:
        rc = node.stop()
    fig["rc"] = rc
    fig["node_errors"] = [e for e in node.errors if e]
    return fig


def test_junk_connections_absorbed():
    """200 junk connections: all closed by the node, honest peers served during and after."""
    fig = run(200)
    print(report(fig, fig["node_cpu_s"]))
    assert fig["left_open"] == 0, fig
    assert not fig["honest_errors"], fig["honest_errors"]
    assert fig["honest_during"] >= 1, fig
    assert fig["rc"] == 0 and not fig["node_errors"], fig["node_errors"]
    # 200 is a tenth of the soak size: its budget is the soak goal (0.5 s for 2,000) with
    # room for a loaded 2-core test machine; the old node took over 1 s for 200.
    assert fig["absorbed_s"] < 1.0, report(fig, fig["node_cpu_s"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--goal", type=float, default=0.5, help="seconds of wall time allowed")
    args = ap.parse_args(argv)
    fig = run(args.conns)
    print(report(fig, fig["node_cpu_s"]))
    ok = (fig["left_open"] == 0 and not fig["honest_errors"] and fig["honest_during"] >= 1
          and fig["rc"] == 0 and not fig["node_errors"] and fig["absorbed_s"] < args.goal)
    if not ok:
        print("details:", {k: v for k, v in fig.items()})
    print("goal: %d junk connections absorbed in < %.1f s with honest peers connecting -> %s" % (
        args.conns, args.goal, "OK" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
