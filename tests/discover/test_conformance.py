"""Discovery v4 as geth's conformance suite (``devp2p discv4 test``) tries a node.

Every test runs a node (``listen_udp`` on a real UDP socket on 127.0.0.1) and talks
to it from a tester socket with its own key, on both crypto backends. Each rule of
issue 12 has a test named after it; the docstring says which geth version's
behaviour it follows.

"Answers nothing" is checked without sleeping: after the packet under test the
tester sends a sentinel ping. The node handles datagrams one at a time, in order,
and sends its replies from the handler, so once the sentinel's pong is in, every
reply to the earlier packet would have arrived before it.
"""

import ipaddress
import logging
import socket
import threading
import time

import pytest

from p2p import crypto, enr, rlpcodec
from p2p.discover import udp as udpmod
from p2p.discover.node import new_node, pubkey_id
from p2p.discover.udp import (
    EnrRequest, EnrResponse, Findnode, Neighbors, Ping, Pong, RpcEndpoint, RpcNode,
    enrRequestPacket, findnodePacket, neighborsPacket, pingPacket, pongPacket,
)

WAIT = 10.0  # generous upper bound for one reply on a loaded machine


def _exp():
    return int(time.time()) + 20


def _start_node(**cfg):
    key = crypto.generate_key()
    tab = udpmod.listen_udp(udpmod.UDPConn.listen("127.0.0.1", 0), udpmod.Config(private_key=key, **cfg))
    tab.net.check_clock_drift = lambda: None  # never ask an NTP server from a test
    assert tab.init_done.wait(WAIT)
    return tab


class RemoteNode:
    """A remote node under our control: a key and a UDP socket on a loopback address."""

    def __init__(self, node, host="127.0.0.1", key=None):
        self.node = node
        self.key = key or crypto.generate_key()
        self.id = pubkey_id(self.key.public_key)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.addr = self.sock.getsockname()
        self.node_addr = node.self().addr()
        self.received = []  # every packet the node sent us: (packet, hash, size)

    def close(self):
        self.sock.close()

    def endpoint(self):
        return RpcEndpoint(ipaddress.ip_address(self.addr[0]), self.addr[1], self.addr[1])

    def send(self, ptype, req):
        pkt, h = udpmod.encode_packet(self.key, ptype, req)
        self.sock.sendto(pkt, self.node_addr)
        return h

    def send_raw(self, data):
        self.sock.sendto(data, self.node_addr)

    def ping(self, to=None, rest=None):
        # Each ping differs (the unused TCP port of `to` counts up): equal pings would
        # have equal hashes, and a pong could not tell which one it answers.
        self._pings = getattr(self, "_pings", 0) + 1
        to = to or RpcEndpoint(ipaddress.ip_address(self.node_addr[0]), self.node_addr[1], self._pings)
        return self.send(pingPacket, Ping(4, self.endpoint(), to, _exp(), rest))

    def recv(self, timeout=WAIT):
        """The next packet from the node: ``(packet, hash)``; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "no packet from the node within %s s" % timeout
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(2048)
            except socket.timeout:
                raise AssertionError("no packet from the node within %s s" % timeout) from None
            p, from_id, h, err = udpmod.decode_packet(data)
            assert err is None, err
            assert from_id == self.node.self().id and src[1] == self.node_addr[1]
            self.received.append((p, h, len(data)))
            return p, h

    def sentinel(self):
        """Ping and collect everything the node sends until that ping's pong."""
        h = self.ping()
        got = []
        while True:
            p, ph = self.recv()
            if isinstance(p, Pong) and p.reply_tok == h:
                return got
            got.append((p, ph))

    def bond(self):
        """Complete the endpoint proof: ping, get the pong, answer the node's ping back.

        Returns our ping's pong and the node's ping back. The ping back follows the
        pong from the same handler, so the sentinel after our ping has collected it.
        """
        for _ in range(10):
            h = self.ping()
            while True:
                p, _ = self.recv()
                if isinstance(p, Pong) and p.reply_tok == h:
                    pong = p
                    break
            self.sentinel()
            ping_backs = [(p, ph) for p, ph, _ in self.received if isinstance(p, Ping)]
            if ping_backs:
                ping_back = ping_backs[-1]
                self.send(pongPacket, Pong(self.endpoint(), ping_back[1], _exp()))
                self.sentinel()  # the node has handled our pong by now
                if self.node.db.has_bond(self.id, self.addr[0]):
                    return pong, ping_back[0]
            # The ping back we answered had timed out already: the next ping draws a new one.
        raise AssertionError("no endpoint proof after 10 tries")


@pytest.fixture
def node(crypto_backend):
    tab = _start_node()
    yield tab
    tab.close()


@pytest.fixture
def tester(node):
    t = RemoteNode(node)
    yield t
    t.close()


def _types(packets):
    return [type(p).__name__ for p, _ in packets]


# ---------------------------------------------------------------------------
# Rule 1


def test_expiration_as_go_reads_it(node, tester, caplog):
    """A uint64 expiration of 2**63 or more is negative for Go, hence past: the ping or
    findnode is dropped, answered with nothing, and `expired` is logged at debug
    (geth 1.8.16's expired(), which converts to int64)."""
    caplog.set_level(logging.DEBUG, logger="p2p.discover")
    negative = 2 ** 64 - (int(time.time()) + 20)  # what -(now+20) becomes on the wire
    to = RpcEndpoint(ipaddress.ip_address(tester.node_addr[0]), tester.node_addr[1], 0)
    tester.send(pingPacket, Ping(4, tester.endpoint(), to, negative))
    assert [p for p, _ in tester.sentinel() if isinstance(p, Pong)] == []
    assert any("PING/v4" in r.getMessage() and "expired" in r.getMessage()
               for r in caplog.records if r.levelno == logging.DEBUG)

    tester.bond()
    caplog.clear()
    tester.send(findnodePacket, Findnode(tester.id, negative))
    assert _types(tester.sentinel()) == []
    assert any("FINDNODE/v4" in r.getMessage() and "expired" in r.getMessage()
               for r in caplog.records if r.levelno == logging.DEBUG)
    # The same findnode with a real expiration is answered.
    tester.send(findnodePacket, Findnode(tester.id, _exp()))
    assert "Neighbors" in _types(tester.sentinel())


# ---------------------------------------------------------------------------
# Rule 2


def test_pong_counts_only_with_ping_hash(node, tester):
    """A pong whose reply token is not the hash of our ping changes nothing: no bond,
    no last-pong time, the node stays out of the table, and findnode gets no
    neighbors (geth 1.8.22, PR 18963: matchers say "mine" and "done" apart)."""
    added = []
    node.node_added_hook = added.append
    h = tester.ping()
    ping_back = None
    pong = None
    while ping_back is None or pong is None:
        p, ph = tester.recv()
        if isinstance(p, Ping):
            ping_back = ph
        elif isinstance(p, Pong) and p.reply_tok == h:
            pong = p
    wrong = bytes(32) if ping_back != bytes(32) else b"\x01" * 32
    tester.send(pongPacket, Pong(tester.endpoint(), wrong, _exp()))
    tester.send(findnodePacket, Findnode(tester.id, _exp()))
    got = tester.sentinel()
    assert "Neighbors" not in _types(got)
    assert node.db.last_pong_received(tester.id, tester.addr[0]) == 0
    assert not node.db.has_bond(tester.id, tester.addr[0])
    assert all(n.id != tester.id for n in added)
    # The right token still completes the proof afterwards.
    tester.send(pongPacket, Pong(tester.endpoint(), ping_back, _exp()))
    tester.sentinel()
    assert node.db.has_bond(tester.id, tester.addr[0])


# ---------------------------------------------------------------------------
# Rule 3


def test_endpoint_proof_per_node_id_and_ip(node, tester):
    """A node bonded from 127.0.0.1 that sends findnode from 127.0.0.2 with the same key
    gets nothing until it is bonded at 127.0.0.2 too; until then the node sends that
    address nothing but one pong per ping and one ping back (geth 1.8.22 matchers by
    ID and IP, geth 1.9.0's nodedb keys n:<id>:v4:<ip>:lastpong)."""
    tester.bond()
    other = RemoteNode(node, host="127.0.0.2", key=tester.key)
    try:
        other.send(findnodePacket, Findnode(tester.id, _exp()))
        other.send(enrRequestPacket, EnrRequest(_exp()))
        got = other.sentinel()
        assert _types(got) in ([], ["Ping"])  # only the ping back to the sentinel's address
        assert not node.db.has_bond(tester.id, "127.0.0.2")
        pings = 1
        for _ in range(3):
            got += other.sentinel()
            pings += 1
        # Amplification: per ping one pong, and at most one ping back while it is pending.
        sent = [type(p).__name__ for p, _, _ in other.received]
        assert sent.count("Pong") == pings
        assert sent.count("Ping") <= 1
        assert set(sent) <= {"Pong", "Ping"}
        # Once 127.0.0.2 is bonded as well, findnode from there is answered.
        other.bond()
        other.send(findnodePacket, Findnode(tester.id, _exp()))
        assert "Neighbors" in _types(other.sentinel())
        # The first address stays bonded on its own.
        tester.send(findnodePacket, Findnode(tester.id, _exp()))
        assert "Neighbors" in _types(tester.sentinel())
    finally:
        other.close()


# ---------------------------------------------------------------------------
# Rule 5 (rule 4, the records themselves, is tests/enr)


def test_enr_request_and_seq_in_ping_pong(node, tester):
    """The node's pong and ping carry its record seq (EIP-868); an ENRRequest from a
    bonded node gets an ENRResponse with the request hash and the node's signed
    record; from an unbonded node it gets nothing (geth 1.9.0: enrRequestV4,
    seq in the tail of ping and pong)."""
    h = tester.send(enrRequestPacket, EnrRequest(_exp()))
    assert "EnrResponse" not in _types(tester.sentinel())

    pong, ping_back = tester.bond()
    seq = node.net.local_record().seq()
    assert seq >= 1
    assert udpmod.seq_from_tail(pong.rest) == seq
    assert udpmod.seq_from_tail(ping_back.rest) == seq

    h = tester.send(enrRequestPacket, EnrRequest(_exp()))
    p, _ = tester.recv()
    assert isinstance(p, EnrResponse) and p.reply_tok == h
    r = p.record
    assert r.signed() and r.seq() == seq
    assert r.node_addr() == crypto.keccak256(node.self().id)
    assert r.load(enr.IP).address() == ipaddress.ip_address("127.0.0.1")
    assert r.load(enr.UDP) == node.self().udp and r.load(enr.TCP) == node.self().tcp
    assert r.load(enr.Secp256k1).raw == bytes(node.self().id)

    # A new endpoint (say the NAT's external address) bumps the seq; pongs say so.
    assert node.net.update_endpoint(("127.0.0.1", node.self().udp), 40404)
    assert node.net.local_record().seq() == seq + 1
    h = tester.ping()
    while True:
        p, _ = tester.recv()
        if isinstance(p, Pong) and p.reply_tok == h:
            break
    assert udpmod.seq_from_tail(p.rest) == seq + 1
    tester.send(enrRequestPacket, EnrRequest(_exp()))
    p, _ = tester.recv()
    assert p.record.seq() == seq + 1 and p.record.load(enr.TCP) == 40404


def test_request_enr_client_and_table_learns_seq(crypto_backend):
    """`udp.request_enr(node)` returns the peer's verified record; the table learns the
    peer's newer seq from its pongs and fetches the record on revalidation (geth
    1.9.0: RequestENR, doRevalidate)."""
    a = _start_node()
    b = _start_node(bootnodes=[a.self()])
    try:
        rec, err = b.net.request_enr(a.self())
        assert err is None, err
        assert rec.node_addr() == crypto.keccak256(a.self().id)
        assert rec.seq() == a.net.local_record().seq()

        # a's record gets newer; b sees the seq in a's next pong and fetches it.
        assert a.net.update_endpoint(("127.0.0.1", a.self().udp), 40405)
        assert b.net.ping(a.self().id, a.self().addr()) is None
        with b.mutex:
            entry = next(n for bk in b.buckets for n in bk.entries if n.id == a.self().id)
        assert entry.seq == a.net.local_record().seq()
        b.do_revalidate()  # a is b's only table entry, so it is the one revalidated
        assert entry.record is not None and entry.record.seq() == a.net.local_record().seq()
        assert entry.record.load(enr.TCP) == 40405

        # Only the node asked can answer: a's ID at b's address gets no record.
        impostor = new_node(a.self().id, b.self().ip, b.self().udp, b.self().tcp)
        rec, err = a.net.request_enr(impostor)
        assert rec is None and err is not None
    finally:
        b.close()
        a.close()


# ---------------------------------------------------------------------------
# Rule 6


def test_tolerates_geth_suite_packets(node, tester):
    """Packets geth's suite sends that a node must tolerate: a ping with extra list
    elements and a wrong `from`, a ping with a wrong `to`, unknown packet types,
    neighbors nobody asked for. The node keeps answering and its table stays clean
    (geth 1.8.16 already behaves so)."""
    wrong = RpcEndpoint(ipaddress.ip_address("10.0.0.7"), 1, 2)
    # Extra elements and a wrong `from`: answered, pong sent to the real source.
    h = tester.send(pingPacket, Ping(4, wrong, RpcEndpoint(ipaddress.ip_address("127.0.0.1"), tester.node_addr[1], 0),
                                     _exp(), [rlpcodec.encode_uint(1), rlpcodec.encode_bytes(b"extra")]))
    p, _ = tester.recv()
    while not isinstance(p, Pong):
        p, _ = tester.recv()
    assert p.reply_tok == h and p.to.udp == tester.addr[1]
    # A wrong `to`: answered.
    h = tester.send(pingPacket, Ping(4, tester.endpoint(), wrong, _exp()))
    pongs = [q for q, _ in tester.sentinel() if isinstance(q, Pong)]
    assert [q.reply_tok for q in pongs] == [h]
    # Unknown packet types: ignored, the node goes on.
    for ptype in (0, 7, 0x42, 255):
        sig = crypto.sign(crypto.keccak256(bytes((ptype,)) + b"\xc0"), tester.key)
        tester.send_raw(crypto.keccak256(sig, bytes((ptype,)) + b"\xc0") + sig + bytes((ptype,)) + b"\xc0")
    tester.sentinel()
    # Neighbors nobody asked for: nothing of them enters the table.
    before = {n.id for bk in node.buckets for n in bk.entries}
    strangers = [RpcNode(ipaddress.ip_address("127.0.0.1"), 30000 + i, 30000 + i,
                         pubkey_id(crypto.generate_key().public_key)) for i in range(3)]
    tester.send(neighborsPacket, Neighbors(strangers, _exp()))
    tester.sentinel()
    with node.mutex:
        after = {n.id for bk in node.buckets for n in bk.entries}
    assert not {s.id for s in strangers} & after
    assert after <= before | {tester.id}


# ---------------------------------------------------------------------------
# Rule 7


def test_one_ping_back_at_a_time(node, tester):
    """20 pings from one unbonded key and address draw 20 pongs and one ping back while
    that ping back waits for its pong (no geth release limits this; geth 1.8.16
    pings back every time)."""
    frozen = node.net.clock()
    node.net.clock = lambda: frozen  # the ping back stays pending for the whole flood
    hashes = [tester.ping() for _ in range(20)]
    tester.sentinel()
    sent = [type(p).__name__ for p, _, _ in tester.received]
    assert sent.count("Ping") == 1, sent
    assert sent.count("Pong") == 21
    assert {p.reply_tok for p, _, _ in tester.received if isinstance(p, Pong)} >= set(hashes)
    # Bytes sent to the flooding address: one pong per ping plus one ping.
    out = sum(size for _, _, size in tester.received)
    pong_size = next(size for p, _, size in tester.received if isinstance(p, Pong))
    assert out <= 21 * pong_size + udpmod.maxPacketSize


# ---------------------------------------------------------------------------
# Faults found by reading the code


def test_reply_callback_error_keeps_loop_running(node, tester, caplog):
    """An exception in a reply callback is logged at error level, the request gets it as
    its error, and the reply loop keeps serving requests."""
    caplog.set_level(logging.ERROR, logger="p2p.discover")

    def boom(p):
        raise RuntimeError("callback bug")

    errc = node.net.pending(tester.id, ipaddress.ip_address("127.0.0.1"), pongPacket, boom)
    tester.send(pongPacket, Pong(tester.endpoint(), bytes(32), _exp()))
    err = errc.get(timeout=WAIT)
    assert isinstance(err, RuntimeError) and str(err) == "callback bug"
    assert any("Reply callback failed" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    # The loop still runs: a full exchange still works both ways.
    tester.bond()
    result = []
    th = threading.Thread(target=lambda: result.append(node.net.ping(tester.id, tester.addr)), name="test.ping")
    th.start()
    try:
        while True:
            p, h = tester.recv()
            if isinstance(p, Ping):
                tester.send(pongPacket, Pong(tester.endpoint(), h, _exp()))
                break
    finally:
        th.join(WAIT)
    assert result == [None]


def test_clock_check_thread_joined_on_close(crypto_backend):
    """The clock-check thread the reply loop starts ends before close returns."""
    tab = _start_node()
    started, release = threading.Event(), threading.Event()

    def check():
        started.set()
        release.wait(WAIT)

    tab.net.check_clock_drift = check
    tab.net._start_clock_check()
    assert started.wait(WAIT)
    th = tab.net._clock_check
    closer = threading.Thread(target=tab.close, name="test.close")
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # close waits for the clock check
    release.set()
    closer.join(WAIT)
    assert not closer.is_alive() and not th.is_alive()
