"""Message pipe and peer dispatch throughput (p2p/message.py, p2p/peer.py)."""

import queue
import threading
import time

from p2p.dial import ConnFlag
from p2p.message import Msg, msg_pipe
from p2p.peer import ProtoHandshake, baseProtocolLength, new_peer
from p2p.protocol import Cap, Protocol

N = 20000
PAYLOAD = b"x" * 100


class _Conn:
    def __init__(self, rw, caps):
        self.transport = rw
        self.fd = None
        self.flags = ConnFlag(0)
        self.id = bytes(64)
        self.caps = caps
        self.name = "bench"

    def read_msg(self):
        return self.transport.read_msg()

    def write_msg(self, msg):
        return self.transport.write_msg(msg)

    def close(self, err):
        self.transport.close()


def _pipe_rate():
    a, b = msg_pipe()

    def writer():
        for _ in range(N):
            a.write_msg(Msg.from_bytes(1, PAYLOAD))

    t = threading.Thread(target=writer, name="bench.writer")
    t0 = time.perf_counter()
    t.start()
    for _ in range(N):
        b.read_msg().discard()
    t.join()
    dt = time.perf_counter() - t0
    a.close()
    return N / dt


def _run_peer(run):
    proto = Protocol("bench", 1, 1, run)
    x, y = msg_pipe()
    p = new_peer(_Conn(x, [proto.cap()]), [proto])
    result = queue.Queue()
    t = threading.Thread(target=lambda: result.put(p.run()), name="bench.Peer.run")
    t.start()
    return y, t


def _dispatch_rate():
    done = threading.Event()

    def run(peer, rw):
        for _ in range(N):
            rw.read_msg().discard()
        done.set()
        rw.read_msg()

    y, t = _run_peer(run)
    t0 = time.perf_counter()
    for _ in range(N):
        y.write_msg(Msg.from_bytes(baseProtocolLength, PAYLOAD))
    done.wait()
    dt = time.perf_counter() - t0
    y.close()
    t.join()
    return N / dt


def _write_rate():
    def run(peer, rw):
        for _ in range(N):
            rw.write_msg(Msg.from_bytes(0, PAYLOAD))
        rw.read_msg()

    y, t = _run_peer(run)
    t0 = time.perf_counter()
    for _ in range(N):
        y.read_msg().discard()
    dt = time.perf_counter() - t0
    y.close()
    t.join()
    return N / dt


def _hello_decode_us():
    enc = ProtoHandshake(5, "Geth/v1.8.13-stable/linux-amd64/go1.10", [Cap("eth", 62), Cap("eth", 63)],
                         30303, bytes(range(64))).encode()
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        ProtoHandshake.decode(enc)
    return (time.perf_counter() - t0) / n * 1e6


def run(report):
    report.add("peer", "MsgPipe write+read (100 B payload)", _pipe_rate(), "msg/s")
    report.add("peer", "Peer readLoop -> protocol dispatch", _dispatch_rate(), "msg/s")
    report.add("peer", "protocol -> Peer write (token, offset)", _write_rate(), "msg/s")
    report.add("peer", "ProtoHandshake decode", _hello_decode_us(), "us")
