"""Figures for the devp2p server (p2p/server.py) with 100 peers on loopback.

One Server (no discovery, no dialing, one sub-protocol) listens on 127.0.0.1.
A child process opens 100 connections to it as lightweight RLPx clients: each
client is only ``p2p.rlpx`` (encryption handshake, devp2p hello) over a socket,
no Server and no Peer of its own, run by a few threads. The clients live in
another process so that their half of every handshake does not share the
server's interpreter lock: what is timed is the server's side.

Figures:
* setup time of 100 peers: from "go" to the server's 100th peer-add event;
  as peers/s its limit is the server-side EC operations of one handshake
  (2 key generations, 4 ECDH, 1 recover) measured in the same run;
* the server process's resident memory with 100 peers, and the growth per peer;
* threads per peer, and apart from them the inbound handshake workers still
  waiting for connections;
* time for Server.stop() with 100 peers, and that every thread it started ended.
"""

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time

from p2p import crypto
from p2p.crypto import ecies

N_PEERS = 100
CLIENT_THREADS = 8
WAIT = 60.0


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _ec_limit():
    """Handshakes/s of the receiving side if only its EC operations cost time."""
    prv = crypto.generate_key()
    other = crypto.generate_key()
    h = os.urandom(32)
    sig = crypto.sign(h, other)
    pub = other.public_key

    def ops():
        for _ in range(2):
            ecies.generate_key()
        for _ in range(4):
            crypto.ecdh(prv, pub)
        crypto.recover_node_id(h, sig)

    for _ in range(3):
        ops()
    n, t0 = 0, time.perf_counter()
    while True:
        ops()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= 0.5 and n >= 20:
            return n / dt


def _bench_protocol(running):
    """The one sub-protocol: reads and drops messages; puts a token on running when it starts."""
    from p2p.protocol import Protocol

    def run(peer, rw):
        running.put(None)
        while True:  # until the peer goes away
            rw.read_msg().discard()

    return Protocol(name="bench", version=1, length=1, run=run)


def bench_server(report, n_peers=N_PEERS, client_threads=CLIENT_THREADS):
    from p2p import rlpx  # noqa: F401 - the server imports it on its first connection: not timed
    from p2p.peer import PeerEventTypeAdd
    from p2p.server import Config, Server

    limit = _ec_limit()
    before_threads = set(threading.enumerate())
    running = queue.Queue()
    srv = Server(Config(private_key=crypto.generate_key(), max_peers=n_peers + 10,
                        max_pending_peers=n_peers, listen_addr="127.0.0.1:0", no_discovery=True,
                        no_dial=True, name="bench-server", protocols=[_bench_protocol(running)]))
    events = queue.Queue()
    child = None
    sub = None
    srv.start()
    try:
        sub = srv.subscribe_events(events)
        rss0 = _rss_bytes()
        threads0 = set(threading.enumerate())
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_server", "--clients", srv.listen_addr,
             srv.self().id.hex(), str(n_peers), str(client_threads)],
            cwd=here, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("bench client process failed to start")
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        child.stdin.write("go\n")
        child.stdin.flush()
        added = 0
        while added < n_peers:
            ev = events.get(timeout=WAIT)
            if ev.type == PeerEventTypeAdd:
                added += 1
        setup = time.perf_counter() - t0
        setup_cpu = time.process_time() - cpu0
        line = child.stdout.readline().split()
        if line[:1] != ["done"] or int(line[1]) != n_peers:
            raise RuntimeError("bench clients: %r" % line)
        assert srv.peer_count() == n_peers
        # A peer-add event comes before the peer starts its threads; the protocol's
        # thread is the last one each peer starts.
        for _ in range(n_peers):
            running.get(timeout=WAIT)
        # The inbound handshake threads stay for the next connections (departure
        # handshake-workers); how many were started depends on how the handshakes
        # overlapped, so they are counted apart from the peers' own threads.
        started = [t for t in threading.enumerate() if t not in threads0]
        workers = sum(1 for t in started if t.name == "p2p.Server.listenLoop.SetupConn")
        threads = len(started) - workers
        rss = _rss_bytes()
        t1 = time.perf_counter()
        sub.unsubscribe()
        sub = None
        srv.stop()
        stop_time = time.perf_counter() - t1
    finally:
        if sub is not None:
            sub.unsubscribe()
        srv.stop()
        if child is not None:
            try:
                child.stdin.close()  # the clients close their sockets and exit
                child.wait(WAIT)
            except Exception:
                child.kill()
                child.wait()
            child.stdout.close()
    left = [t for t in threading.enumerate() if t not in before_threads]
    for t in left:
        t.join(10)
    left = [t.name for t in left if t.is_alive()]
    if left:
        raise RuntimeError("threads left running after Server.stop: %s" % left)
    g = "server"
    report.add(g, "setup of %d peers (child process clients)" % n_peers, setup, "s")
    report.add(g, "peer setup rate, %d peers" % n_peers, n_peers / setup, "peers/s",
               limit=limit, limit_name="server EC ops only")
    report.add(g, "peer setups per server CPU second", n_peers / setup_cpu, "peers/s",
               limit=limit, limit_name="server EC ops only")
    report.add(g, "resident memory with %d peers" % n_peers, rss / 2**20, "MiB")
    report.add(g, "resident memory per peer", (rss - rss0) / n_peers / 1024, "KiB")
    report.add(g, "threads per peer", threads / n_peers, "threads")
    report.add(g, "inbound handshake workers after %d peers" % n_peers, workers, "threads")
    report.add(g, "Server.stop with %d peers" % n_peers, stop_time * 1000, "ms")


class _Rows:
    def __init__(self):
        self.rows = []

    def add(self, *args, **kw):
        self.rows.append((args, kw))


def run(report, n_peers=N_PEERS):
    """Measure in a fresh interpreter, so that the resident memory figures of one
    run are not hidden by memory an earlier bench (or run) freed."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", "bench.bench_server", "--measure", str(n_peers)],
                         cwd=here, stdout=subprocess.PIPE, text=True, timeout=5 * WAIT, check=True)
    for args, kw in json.loads(out.stdout.strip().splitlines()[-1]):
        report.add(*args, **kw)


# -- the client process -------------------------------------------------------------


def _clients_main(addr, id_hex, n, nthreads):
    """Connect n RLPx clients to addr; hold them until stdin closes."""
    from p2p import rlpx
    from p2p.discover.node import NodeID, pubkey_id, Node
    from p2p.peer import ProtoHandshake
    from p2p.protocol import Cap
    from p2p.server import split_host_port

    host, port = split_host_port(addr)
    dest = Node(id=NodeID(bytes.fromhex(id_hex)))
    keys = [crypto.generate_key() for _ in range(n)]
    work = queue.Queue()
    for k in keys:
        work.put(k)
    conns = []
    errors = []
    lock = threading.Lock()

    def worker():
        while True:
            try:
                prv = work.get_nowait()
            except queue.Empty:
                return
            try:
                fd = socket.create_connection((host, port), timeout=WAIT)
                t = rlpx.new_rlpx(fd)
                t.do_enc_handshake(prv, dest)
                t.do_proto_handshake(ProtoHandshake(version=5, name="bench-client",
                                                    caps=[Cap("bench", 1)],
                                                    id=pubkey_id(prv.public_key)))
                with lock:
                    conns.append(fd)
            except Exception as e:
                with lock:
                    errors.append(repr(e))

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    ths = [threading.Thread(target=worker, name="bench.server.client", daemon=True)
           for _ in range(nthreads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    print("done %d %s" % (len(conns), ";".join(errors[:3])), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    for fd in conns:
        try:
            fd.close()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--clients":
        sys.exit(_clients_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        rows = _Rows()
        with crypto.use_backend("coincurve"):
            bench_server(rows, int(sys.argv[2]))
        print(json.dumps(rows.rows))
        sys.exit(0)
    from bench.__main__ import Report

    run(Report(verbose=True))
