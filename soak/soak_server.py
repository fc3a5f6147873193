"""Soak: thousands of connect / handshake / disconnect cycles against one Server.

Each cycle is a real RLPx client on 127.0.0.1: encryption handshake, hello,
the server's welcome message on a test protocol, then the client hangs up and
the cycle waits for the server's peer-drop event. After a warm-up, the
process's threads, open fds and RSS are recorded; after the last cycle they
must be back (threads and fds exactly; RSS within ``--rss-tolerance`` MiB).
Then the server stops and the thread count must return to what it was before
it started. Exit status 1 on any failure.

    python -m soak.soak_server --cycles 2000 --parallel 4
"""

import argparse
import os
import queue
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Soak runs stay on loopback: the clock check that discovery starts after many
# timeouts asks 127.0.0.1 instead of pool.ntp.org (read when p2p.discover.ntp loads).
os.environ.setdefault("GETHP2P_NTP_POOL", "127.0.0.1")

from p2p import crypto, peer as peermod, rlpx, server as srvmod  # noqa: E402
from p2p.discover.node import pubkey_id  # noqa: E402
from p2p.message import send  # noqa: E402
from p2p.peer import ProtoHandshake  # noqa: E402
from p2p.protocol import Cap, Protocol  # noqa: E402
from p2p.server import Config, Server  # noqa: E402

from soak._resources import compare, fmt, snapshot, wait_threads  # noqa: E402

WAIT = 20.0
WELCOME = peermod.baseProtocolLength


def _hold_run(peer, rw):
    send(rw, 0, [])
    while True:
        rw.read_msg().discard()


class Drops:
    """Counts the server's peer-drop events; ``wait(n)`` blocks until n were seen."""

    def __init__(self, srv):
        self.cond = threading.Condition()
        self.n = 0
        self.per_peer = {}
        self.q = queue.Queue()
        self.sub = srv.subscribe_events(self.q)
        self.th = threading.Thread(target=self._run, name="soak.Drops", daemon=True)
        self.th.start()

    def _run(self):
        while True:
            ev = self.q.get()
            if ev is None:
                return
            if ev.type == "drop":
                with self.cond:
                    self.n += 1
                    self.per_peer[ev.peer] = self.per_peer.get(ev.peer, 0) + 1
                    self.cond.notify_all()

    def wait(self, n):
        with self.cond:
            if not self.cond.wait_for(lambda: self.n >= n, WAIT):
                raise RuntimeError("server did not drop the peer (%d/%d drops)" % (self.n, n))

    def wait_peer(self, nid, n):
        with self.cond:
            if not self.cond.wait_for(lambda: self.per_peer.get(nid, 0) >= n, WAIT):
                raise RuntimeError("server did not drop peer %s" % nid.hex()[:8])

    def close(self):
        self.sub.unsubscribe()
        self.q.put(None)
        self.th.join(WAIT)


def cycle(srv, key):
    host, port = srvmod.split_host_port(srv.listen_addr)
    sock = socket.create_connection((host, port), timeout=WAIT)
    try:
        t = rlpx.new_rlpx(sock, handshake_timeout=WAIT, frame_read_timeout=WAIT)
        t.do_enc_handshake(key, srv.self())
        our = ProtoHandshake(version=peermod.baseProtocolVersion, name="soak", caps=[Cap("hold", 1)],
                             listen_port=0, id=pubkey_id(key.public_key))
        t.do_proto_handshake(our)
        msg = t.read_msg()
        if msg.code != WELCOME:
            raise RuntimeError("expected the welcome message, got code %d" % msg.code)
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def run_cycles(srv, drops, count, parallel, done_before):
    """``count`` cycles on ``parallel`` client threads; waits for every drop."""
    errors = []
    per = [count // parallel + (1 if i < count % parallel else 0) for i in range(parallel)]

    def worker(n):
        key = crypto.generate_key()  # one identity per worker: never two live conns with one id
        nid = pubkey_id(key.public_key)
        with drops.cond:
            base = drops.per_peer.get(nid, 0)
        try:
            for i in range(n):
                cycle(srv, key)
                # Wait for this peer's drop before reconnecting with the same identity.
                drops.wait_peer(nid, base + i + 1)
        except Exception as e:
            errors.append(e)

    ths = [threading.Thread(target=worker, args=(n,), name="soak.client") for n in per]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    if errors:
        raise errors[0]
    drops.wait(done_before + count)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--parallel", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--rss-tolerance", type=float, default=16.0, help="allowed RSS growth in MiB (default 16)")
    args = ap.parse_args(argv)

    before_server = snapshot()
    srv = Server(Config(private_key=crypto.generate_key(), max_peers=args.parallel + 2, no_discovery=True,
                        listen_addr="127.0.0.1:0", name="soak",
                        protocols=[Protocol(name="hold", version=1, length=1, run=_hold_run)]))
    srv.start()
    drops = Drops(srv)
    ok = True
    t0 = time.monotonic()
    try:
        run_cycles(srv, drops, args.warmup, args.parallel, 0)
        start = snapshot()
        t1 = time.monotonic()
        run_cycles(srv, drops, args.cycles, args.parallel, args.warmup)
        elapsed = time.monotonic() - t1
        wait_threads(start["threads"])
        end = snapshot()
        print("soak_server: %d cycles (%d warm-up) on %d client threads in %.1f s (%.0f cycles/s)" % (
            args.cycles, args.warmup, args.parallel, elapsed, args.cycles / elapsed))
        ok = compare("server running", start, end, args.rss_tolerance)
        if srv.peer_count() != 0:
            print("FAIL: %d peers left" % srv.peer_count())
            ok = False
    finally:
        drops.close()
        srv.stop()
    wait_threads(before_server["threads"])
    after = snapshot()
    stopped_ok = after["threads"] == before_server["threads"] and after["fds"] == before_server["fds"]
    print("after stop: %s (before start: %s) -> %s" % (fmt(after), fmt(before_server), "OK" if stopped_ok else "FAIL"))
    print("total %.1f s" % (time.monotonic() - t0))
    return 0 if ok and stopped_ok else 1


if __name__ == "__main__":
    sys.exit(main())
