"""bootnode --v5: a discovery v5 (topic discovery) bootnode, run as a subprocess on 127.0.0.1."""

import queue
import re
import signal
import threading

from p2p import crypto
from p2p.discover.udp import UDPConn
from p2p.discv5 import udp as v5udp
from p2p.discv5.node import new_node, parse_node, pubkey_id
from p2p.discv5.nodeevent_string import pongPacket

from tests.cmd.test_bootnode import KEYHEX, KEYID, WAIT, Bootnode


class _Recorder:
    def __init__(self, self_node):
        self.tab = type("Tab", (), {"self": self_node})()
        self.got = queue.Queue()

    def req_read_packet(self, pkt):
        self.got.put(pkt)


def test_serve_v5_prints_url_and_answers_v5_ping(crypto_backend):
    b = Bootnode("--nodekeyhex", KEYHEX, "--addr", "127.0.0.1:0", "--v5")
    try:
        _ping_v5_bootnode(b)
    finally:
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.communicate()


def _ping_v5_bootnode(b):
    line = b.first_line()
    m = re.fullmatch(r"enode://([0-9a-f]{128})@127\.0\.0\.1:(\d+)", line)
    assert m and m.group(1) == KEYID, line
    boot = parse_node(line)  # a discv5 node URL
    key = crypto.generate_key()
    conn = UDPConn.listen("127.0.0.1", 0)
    t = v5udp._listen_udp(key, conn, conn.local_addr())
    t.net = _Recorder(new_node(pubkey_id(key), "127.0.0.1", conn.local_addr()[1], conn.local_addr()[1]))
    th = threading.Thread(target=t.read_loop, name="discv5.udp.readLoop", daemon=True)
    t._read_thread = th
    th.start()
    try:
        # A cold subprocess may miss the first ping on a loaded machine: ping until a pong comes.
        hashes = set()
        pong = None
        for _ in range(10):
            hashes.add(t.send_ping(boot, boot.addr(), []))
            try:
                while True:
                    pkt = t.net.got.get(timeout=WAIT / 10)
                    if pkt.ev == pongPacket:
                        pong = pkt
                        break
            except queue.Empty:
                continue
            break
        assert pong is not None and pong.remote_id == boot.id
        assert pong.data.reply_tok in hashes
    finally:
        t.close()
    code, out, err = b.stop(signal.SIGTERM)
    assert code == 0, err
    assert out == ""
