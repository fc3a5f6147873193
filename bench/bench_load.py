"""Throughput of a running ``p2pnode`` under load, from a load generator in another process.

The node is a ``p2pnode`` process on 127.0.0.1 (discovery on, no bootnodes, no dialing).
The load generator is a second process (``python -m bench.bench_load --rlpx/--disc``),
so that the clients' work does not share the node's interpreter lock; it spends as
little CPU as it can, so that the node gets the machine's cores:

* RLPx: 16 client threads; each connects, sends an EIP-8 auth and reads the node's
  EIP-8 ack, then closes, over and over. The auth packets (64 of them, each from its
  own key) are made once, before the clock starts, and replayed (geth 1.8 keeps no
  record of auths seen). Each thread's first handshake is a complete initiator
  handshake, which checks that the acks are real.
* discv4: 8 UDP sockets, each with its own key, keep 4 pings each in flight to the
  node and count the pongs (a ping is sent again when its pong is 0.2 s late). The
  node's own pings back (bonding) are answered with pongs. The pings are made before
  the clock starts.

The node's CPU time (user + system, from /proc) over the measured window, divided by
the handshakes answered (pongs received), is set beside the CPU time of the same work
done in-process by one thread, measured in this run: for RLPx one receiver-side
encryption handshake (``receiver_enc_handshake`` on an auth in memory, plus the frame
reader/writer it builds); for discovery decode+recover of a ping plus encode+sign of
its pong. "cores" is the node's CPU time over the window's wall time.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import rlp

from p2p import crypto, rlpx
from bench.timing import cpu_rate

RLPX_CLIENTS = 16
DISC_SOCKETS = 8
DISC_WINDOW = 4  # pings in flight per socket
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "4.0"))
WAIT = 60.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the node ------------------------------------------------------------------------


class _Node:
    """A p2pnode process on 127.0.0.1; its enode URL is read from its first stdout line."""

    def __init__(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("GETHP2P_NTP_POOL", "127.0.0.1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "p2p.cmd.p2pnode", "--addr", "127.0.0.1:0", "--nodial",
             "--maxpeers", "50", "--verbosity", "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=env, cwd=ROOT)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("enode://"):
            self.stop()
            raise RuntimeError("p2pnode did not start: %r" % self.url)
        # The rest of stdout (peer lines) is drained so the node never blocks on it.
        self._drain = threading.Thread(target=self.proc.stdout.read, name="bench.load.stdout", daemon=True)
        self._drain.start()

    def cpu_seconds(self) -> float:
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdin.close()
        if hasattr(self, "_drain"):
            self._drain.join(WAIT)
        self.proc.stdout.close()


def _measure(node, mode, n, seconds):
    """Run the load generator in ``mode`` against ``node``; returns (answered, wall s, node CPU s)."""
    gen = subprocess.Popen([sys.executable, "-m", "bench.bench_load", mode, node.url, str(n), str(seconds)],
                           cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = gen.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("load generator failed to start: %r" % line)
        cpu0 = node.cpu_seconds()
        gen.stdin.write("go\n")
        gen.stdin.flush()
        res = json.loads(gen.stdout.readline())
        cpu = node.cpu_seconds() - cpu0
        if gen.wait(WAIT) != 0 or not res["answered"]:
            raise RuntimeError("load generator: %r" % res)
    finally:
        if gen.poll() is None:
            gen.kill()
            gen.wait()
        gen.stdin.close()
        gen.stdout.close()
    return res["answered"], res["seconds"], cpu


# -- the in-process limits ---------------------------------------------------------


class _Replay:
    """A byte stream that reads one auth packet and swallows what is written."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def read(self, n):
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def write(self, b):
        return len(b)


def _receiver_handshake_cost(seconds=1.0):
    """CPU seconds of one receiver-side encryption handshake, in this thread."""
    from p2p.discover.node import pubkey_id

    prv = crypto.generate_key()
    auths = _auth_packets(pubkey_id(prv.public_key), 16)
    i = [0]

    def one():
        sec = rlpx.receiver_enc_handshake(_Replay(auths[i[0] % len(auths)]), prv)
        rlpx.new_rlpx_frame_rw(_Replay(b""), sec)
        i[0] += 1

    return 1.0 / cpu_rate(one, seconds=seconds)


def _pong_cost(seconds=1.0):
    """CPU seconds of decode+recover of one ping plus encode+sign of its pong, in this thread
    (the node's own codec, p2p.discover.udp)."""
    from p2p.discover import udp as udpmod

    node_key, client_key = crypto.generate_key(), crypto.generate_key()
    ping = _ping_packet(client_key, ("127.0.0.1", 30303), ("127.0.0.1", 30304))
    to = udpmod.make_endpoint(("127.0.0.1", 30303), 30303)

    def one():
        req, from_id, hash_, err = udpmod.decode_packet(ping)
        assert err is None
        udpmod.encode_packet(node_key, udpmod.pongPacket,
                             udpmod.Pong(to=to, reply_tok=hash_, expiration=int(time.time()) + 20))

    return 1.0 / cpu_rate(one, seconds=seconds)


# -- packets -------------------------------------------------------------------------


def _node_id(url):
    from p2p.discover.node import parse_node

    n = parse_node(url)
    return n.id, (str(n.ip), n.tcp, n.udp)


def _auth_packets(node_id, n):
    """n EIP-8 auth packets for node ``node_id``, each from a fresh key."""
    out = []
    for _ in range(n):
        h = rlpx.EncHandshake(initiator=True, remote_id=node_id)
        out.append(rlpx.seal_eip8(h.make_auth_msg(crypto.generate_key()), h))
    return out


def _ip4(host):
    return socket.inet_aton(host)


def _packet(key, ptype, fields):
    """A discv4 packet: hash || signature || type || RLP(fields), made with pyrlp."""
    data = bytes((ptype,)) + rlp.encode(fields)
    sig = crypto.sign(crypto.keccak256(data), key)
    return crypto.keccak256(sig, data) + sig + data


def _ping_packet(key, from_addr, to_addr, expiration=None):
    exp = expiration or int(time.time()) + 3600
    return _packet(key, 1, [4, [_ip4(from_addr[0]), from_addr[1], from_addr[1]],
                            [_ip4(to_addr[0]), to_addr[1], to_addr[1]], exp])


# -- the load generator process ------------------------------------------------------


def _rlpx_load(url, nclients, seconds):
    from p2p.discover.node import Node

    node_id, (host, tcp, _) = _node_id(url)
    auths = _auth_packets(node_id, 64)
    dest = Node(id=node_id)
    counts = [0] * nclients
    errors = []
    start = threading.Event()
    t_end = [0.0]

    def client(i):
        try:
            # One real initiator handshake first: the node's acks are valid.
            fd = socket.create_connection((host, tcp), timeout=WAIT)
            try:
                rlpx.new_rlpx(fd).do_enc_handshake(crypto.generate_key(), dest)
            finally:
                fd.close()
        except Exception as e:  # reported to the parent
            errors.append("check: %r" % e)
            return
        start.wait()
        k = i
        while time.perf_counter() < t_end[0]:
            auth = auths[k % len(auths)]
            k += nclients
            try:
                fd = socket.create_connection((host, tcp), timeout=WAIT)
                try:
                    fd.sendall(auth)
                    head = _recv_exact(fd, 2)
                    _recv_exact(fd, int.from_bytes(head, "big"))
                finally:
                    fd.close()
                counts[i] += 1
            except OSError as e:
                errors.append(repr(e))

    return _drive(client, nclients, seconds, start, t_end, counts, errors)


def _recv_exact(fd, n):
    buf = bytearray(n)
    mv = memoryview(buf)
    got = 0
    while got < n:
        k = fd.recv_into(mv[got:])
        if k == 0:
            raise ConnectionError("node closed after %d of %d bytes" % (got, n))
        got += k
    return buf


def _disc_load(url, nsockets, seconds):
    node_id, (host, _, udp) = _node_id(url)
    to = (host, udp)
    counts = [0] * nsockets
    errors = []
    start = threading.Event()
    t_end = [0.0]
    socks, pings, keys = [], [], []
    for _ in range(nsockets):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        key = crypto.generate_key()
        socks.append(s)
        keys.append(key)
        pings.append([_ping_packet(key, s.getsockname(), to) for _ in range(DISC_WINDOW)])

    def client(i):
        s, key, mine = socks[i], keys[i], pings[i]
        me = s.getsockname()
        start.wait()
        for p in mine:
            s.sendto(p, to)
        k = 0
        while time.perf_counter() < t_end[0]:
            try:
                buf, _ = s.recvfrom(2048)
            except socket.timeout:
                for p in mine:  # lost under load: fill the window again
                    s.sendto(p, to)
                continue
            ptype = buf[97] if len(buf) > 97 else 0
            if ptype == 2:  # pong: one answered, send the next ping
                counts[i] += 1
                s.sendto(mine[k % DISC_WINDOW], to)
                k += 1
            elif ptype == 1:  # the node bonds with us: answer its ping
                s.sendto(_packet(key, 2, [[_ip4(me[0]), me[1], me[1]], bytes(buf[:32]),
                                          int(time.time()) + 60]), to)

    try:
        return _drive(client, nsockets, seconds, start, t_end, counts, errors)
    finally:
        for s in socks:
            s.close()


def _drive(client, n, seconds, start, t_end, counts, errors):
    ths = [threading.Thread(target=client, args=(i,), name="bench.load.client", daemon=True) for i in range(n)]
    for t in ths:
        t.start()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    t0 = time.perf_counter()
    t_end[0] = t0 + seconds
    start.set()
    for t in ths:
        t.join(seconds + WAIT)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"answered": sum(counts), "seconds": elapsed, "errors": len(errors),
                      "first_errors": errors[:3]}), flush=True)
    return 0


# -- the bench -------------------------------------------------------------------------


def run(report, seconds=SECONDS, limit_seconds=1.0):
    """Both loads, ``seconds`` each, and the in-process limits (``limit_seconds`` of CPU each)."""
    with crypto.use_backend("coincurve"):
        hs_cost = _receiver_handshake_cost(limit_seconds)
        pong_cost = _pong_cost(limit_seconds)
    node = _Node()
    try:
        n, wall, cpu = _measure(node, "--rlpx", RLPX_CLIENTS, seconds)
        report.add("load", "EIP-8 handshakes answered, %d clients" % RLPX_CLIENTS, n / wall, "hs/s",
                   limit=1.0 / hs_cost, limit_name="1 thread, in-process")
        report.add("load", "node CPU per answered handshake", cpu / n * 1e3, "ms",
                   limit=hs_cost * 1e3, limit_name="receiver handshake")
        report.add("load", "node cores busy, handshake load", cpu / wall, "cores")
        n, wall, cpu = _measure(node, "--disc", DISC_SOCKETS, seconds)
        report.add("load", "discv4 pongs, %d client sockets" % DISC_SOCKETS, n / wall, "pongs/s",
                   limit=1.0 / pong_cost, limit_name="1 thread, in-process")
        report.add("load", "node CPU per pong", cpu / n * 1e3, "ms",
                   limit=pong_cost * 1e3, limit_name="decode+recover+enc+sign")
        report.add("load", "node cores busy, ping load", cpu / wall, "cores")
    finally:
        node.stop()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] in ("--rlpx", "--disc"):
        with crypto.use_backend("coincurve"):
            fn = _rlpx_load if sys.argv[1] == "--rlpx" else _disc_load
            sys.exit(fn(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    from bench.__main__ import Report

    run(Report(verbose=True))
