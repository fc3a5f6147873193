"""Hostile peers against a live node: a p2pnode process on 127.0.0.1, attacked over loopback.

Frame size claims (issue 9, item 7): after the encryption handshake an attacker
sends a frame header (with a valid MAC) that claims a frame of nearly 16 MiB, and
then only a few bytes of it. A node that allocates the claimed size up front pays
16 MiB per connection before a byte of the frame arrives. Ours refuses the claim
outright before the hello (no hello or disconnect is bigger than 2 KiB) and, after
the hello, takes memory in chunks as the frame's bytes arrive.

The node's resident memory is read from /proc: its peak (VmHWM, reset through
/proc/<pid>/clear_refs at the start of each phase) against its resident size at
that start. An honest peer connects and chats while the claims are held.

``make test`` runs a small size (10 connections per phase); ``make soak`` runs
``python -m tests.test_attacks --conns 50`` (issue 9's size) and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading

import pytest

from p2p import crypto, rlpx
from p2p.discover.node import Node as DNode, pubkey_id
from p2p.message import send
from p2p.peer import ProtoHandshake
from p2p.protocol import Cap
from tests.helpers import P2PNodeProcess

WAIT = 30.0  # upper bound for a wait on a condition; never a sleep
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLAIM = (1 << 24) - 1  # the largest frame size a header can claim
SENT = 1000  # bytes of the claimed frame the attacker actually sends


def start_node(*args):
    """A p2pnode subprocess (no discovery, no dialing) with its enode URL read."""
    node = P2PNodeProcess("--nodial", *args, wait=WAIT, name="test.attacks")
    node.enode()
    return node


def _hello(prv):
    return ProtoHandshake(version=5, name="attacker", caps=[Cap("chat", 1)], id=pubkey_id(prv.public_key))


def _connect(node, hello: bool):
    """A socket past the encryption handshake (and the hello, if asked) with ``node``."""
    prv = crypto.generate_key()
    fd = socket.create_connection((str(node.ip), node.tcp), timeout=WAIT)
    t = rlpx.new_rlpx(fd)
    t.do_enc_handshake(prv, DNode(id=node.id))
    if hello:
        t.do_proto_handshake(_hello(prv))
    return fd, t


def _claim(t, size=CLAIM, sent=SENT):
    """Write a frame header (valid MAC) claiming ``size`` bytes, then only ``sent`` bytes of it."""
    rw = t.rw
    head = rw.enc.update(size.to_bytes(3, "big") + rlpx.zeroHeader + bytes(10))
    mac = rlpx.update_mac(rw.egress_mac, rw.mac_cipher, head)
    rw.conn.write(head + mac + os.urandom(sent))


def _wait_closed(fd):
    """Read until the node closes the connection (EOF or reset)."""
    fd.settimeout(WAIT)
    try:
        while fd.recv(65536):
            pass
    except ConnectionResetError:
        pass


def _honest_chat(node):
    """An honest peer completes both handshakes and the node prints its chat message."""
    fd, t = _connect(node.node, hello=True)
    try:
        text = "honest %s" % os.urandom(4).hex()
        send(t, 16, [text.encode()])  # chat/1 code 0, after the 16 base protocol codes
        node.expect(lambda line: line.startswith("chat ") and line.endswith(text), "honest chat")
    finally:
        t.close()


def _start(conns):
    node = start_node("--maxpeers", str(conns + 10))
    _honest_chat(node)  # warm up: the code paths of a peer are loaded and run once
    node.expect(lambda line: line.startswith("peer drop"), "warm-up peer drop")
    return node


def run_frame_claims(conns: int):
    """Both phases, each against a fresh node (memory freed in one phase would hide
    the next one's allocations); returns {figure: value} (memory figures in bytes)."""
    figures = {"connections per phase": conns}

    # Before the hello: the claim must be refused from its header alone.
    node = _start(conns)
    try:
        base = node.rss()
        node.reset_peak()
        held = []
        for _ in range(conns):  # each claim right away: the handshake slots stay free
            fd, t = _connect(node.node, hello=False)
            _claim(t)
            held.append((fd, t))
        for fd, _ in held:
            _wait_closed(fd)
        figures["before hello: peak RSS growth"] = node.peak_rss() - base
        for _, t in held:
            t.close()
        _honest_chat(node)
    finally:
        assert node.stop() == 0

    # After the hello: the claims are held open while an honest peer chats.
    node = _start(conns)
    try:
        base = node.rss()
        node.reset_peak()
        held = [_connect(node.node, hello=True) for _ in range(conns)]
        for _ in range(conns):
            node.expect(lambda line: line.startswith("peer add"), "attacker peer add")
        for _, t in held:
            _claim(t)
        _honest_chat(node)
        figures["after hello: RSS growth with the claims held"] = node.rss() - base
        for _, t in held:
            t.close()
        for _ in range(conns + 1):  # the attackers and the honest peer
            node.expect(lambda line: line.startswith("peer drop"), "attacker peer drop")
        figures["after hello: peak RSS growth"] = node.peak_rss() - base
    finally:
        assert node.stop() == 0
    return figures


def _print(figures):
    for k, v in figures.items():
        print("  %-48s %s" % (k, ("%.1f MB" % (v / 1e6)) if "RSS" in k else v))


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_frame_size_claims_cost_no_memory():
    """10 connections before and 10 after the hello claim 16 MiB frames: the node's peak
    resident memory grows by less than 20 MB (allocating the claims would take 160 MB)."""
    figures = run_frame_claims(10)
    _print(figures)
    assert figures["before hello: peak RSS growth"] < 20e6, figures
    assert figures["after hello: peak RSS growth"] < 20e6, figures


def test_hello_frame_limit_in_process():
    """Before the hello the frame reader refuses a claim over the hello limit from the header."""
    a, b = socket.socketpair()
    try:
        ta, tb = rlpx.new_rlpx(a), rlpx.new_rlpx(b)
        prv_b = crypto.generate_key()
        th = threading.Thread(target=tb.do_enc_handshake, args=(prv_b, None), name="test.receiver")
        th.start()
        ta.do_enc_handshake(crypto.generate_key(), DNode(id=pubkey_id(prv_b.public_key)))
        th.join(WAIT)
        _claim(ta, size=rlpx.maxHelloFrameSize + 1, sent=0)
        with pytest.raises(rlpx.RLPxError, match="over the limit"):
            tb.do_proto_handshake(_hello(prv_b))
    finally:
        a.close()
        b.close()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.test_attacks")
    ap.add_argument("--conns", type=int, default=50, help="connections claiming 16 MiB, per phase")
    args = ap.parse_args(argv)
    figures = run_frame_claims(args.conns)
    print("frame size claims against a p2pnode process (goal: each RSS growth < 20 MB):")
    _print(figures)
    ok = all(v < 20e6 for k, v in figures.items() if "growth" in k)
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
