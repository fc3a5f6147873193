"""Tests for p2p/peer.py (twins of geth's peer_test.go, plus more)."""

import json
import os
import queue
import random
import threading
from pathlib import Path

import pytest
import rlp

from p2p.dial import inboundConn, staticDialedConn, trustedConn, ConnFlag
from p2p.discover.node import NodeID
from p2p.event import Feed
from p2p.message import ErrPipeClosed, Msg, expect_msg, msg_pipe, send, send_items
from p2p.peer import (
    ErrShuttingDown,
    PeerEvent,
    PeerEventTypeMsgRecv,
    PeerEventTypeMsgSend,
    ProtoHandshake,
    ProtoRW,
    baseProtocolLength,
    baseProtocolMaxMsgSize,
    baseProtocolVersion,
    discMsg,
    handshakeMsg,
    match_protocols,
    new_peer,
    new_test_peer,
    pingInterval,
    pingMsg,
    pongMsg,
    snappyProtocolVersion,
)
from p2p.peer_error import (
    DiscAlreadyConnected,
    DiscInvalidIdentity,
    DiscNetworkError,
    DiscProtocolError,
    DiscQuitting,
    DiscReasonError,
    DiscSubprotocolError,
    DiscUselessPeer,
    ErrProtocolReturned,
    PeerError,
    errInvalidMsgCode,
)
from p2p.protocol import Cap, Protocol

WAIT = 5.0
TESTDATA = Path(__file__).parent / "testdata"


def random_id() -> NodeID:
    return NodeID(os.urandom(64))


class _Addr:
    def __init__(self, name):
        self.name = name

    def getpeername(self):
        return ("127.0.0.1", 30303) if self.name == "remote" else self.name

    def getsockname(self):
        return ("127.0.0.1", 40404)


class PipeConn:
    """The server's conn over one end of a MsgPipe (geth's tests use rlpx over net.Pipe)."""

    def __init__(self, rw, caps=(), flags=0, id=None):
        self.fd = _Addr("remote")
        self.transport = rw
        self.flags = ConnFlag(flags)
        self.id = id if id is not None else random_id()
        self.caps = list(caps)
        self.name = "test"
        self.close_errs = queue.Queue()

    def read_msg(self):
        return self.transport.read_msg()

    def write_msg(self, msg):
        return self.transport.write_msg(msg)

    def close(self, err):
        self.close_errs.put(err)
        self.transport.close()


class PeerHarness:
    """What test_peer returns: the remote end, the peer, run's result queue."""

    def __init__(self, protos, ping_interval=None, events=None, flags=0):
        fd1, fd2 = msg_pipe()
        self.c1 = PipeConn(fd1, flags=flags)
        self.c2 = PipeConn(fd2)
        for p in protos:
            self.c1.caps.append(p.cap())
            self.c2.caps.append(p.cap())
        self.peer = new_peer(self.c1, protos)
        if ping_interval is not None:
            self.peer.ping_interval = ping_interval
        if events is not None:
            self.peer.events = events
        self.result = queue.Queue(maxsize=1)  # (remote_requested, err)
        self.thread = threading.Thread(target=lambda: self.result.put(self.peer.run()), name="test.Peer.run")
        self.thread.start()

    @property
    def rw(self):
        return self.c2

    def close(self):
        self.c2.close(Exception("close func called"))

    def err(self, timeout=WAIT):
        return self.result.get(timeout=timeout)[1]

    def finish(self):
        self.close()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "Peer.run did not return"


@pytest.fixture
def test_peer():
    made = []

    def make(protos, **kw):
        tp = PeerHarness(protos, **kw)
        made.append(tp)
        return tp

    yield make
    for tp in made:
        tp.finish()


def test_constants():
    assert baseProtocolVersion == 5
    assert baseProtocolLength == 16
    assert baseProtocolMaxMsgSize == 2 * 1024
    assert snappyProtocolVersion == 5
    assert pingInterval == 15.0
    assert (handshakeMsg, discMsg, pingMsg, pongMsg) == (0, 1, 2, 3)


def test_peer_proto_read_msg(test_peer):
    errors = []

    def run(peer, rw):
        for code, content in ((2, [1]), (3, [2]), (4, [3])):
            try:
                expect_msg(rw, code, content)
            except Exception as e:
                errors.append(e)
        return None

    tp = test_peer([Protocol(name="a", length=5, run=run)])
    send(tp.rw, baseProtocolLength + 2, [1])
    send(tp.rw, baseProtocolLength + 3, [2])
    send(tp.rw, baseProtocolLength + 4, [3])

    err = tp.err()
    assert isinstance(err, ErrProtocolReturned), "peer returned error: %r" % (err,)
    assert errors == []


def test_peer_proto_encode_msg(test_peer):
    errors = []

    def run(peer, rw):
        try:
            send_items(rw, 2)
            errors.append("expected error for out-of-range msg code, got nil")
        except PeerError as e:
            if e.code != errInvalidMsgCode:
                errors.append(e)
        try:
            send_items(rw, 1, "foo", "bar")
        except Exception as e:
            errors.append("write error: %r" % e)
        return None

    tp = test_peer([Protocol(name="a", length=2, run=run)])
    expect_msg(tp.rw, 17, ["foo", "bar"])
    assert isinstance(tp.err(), ErrProtocolReturned)
    assert errors == []


def test_peer_ping(test_peer):
    tp = test_peer([])
    send_items(tp.rw, pingMsg)
    expect_msg(tp.rw, pongMsg, None)


def test_peer_disconnect(test_peer):
    tp = test_peer([])
    send_items(tp.rw, discMsg, DiscQuitting)
    remote_requested, err = tp.result.get(timeout=WAIT)
    assert remote_requested is True
    assert isinstance(err, DiscReasonError)
    assert err.reason == DiscQuitting, "run returned wrong reason: got %s" % err
    # The local side closes its transport with the remote's reason.
    assert tp.c1.close_errs.get(timeout=WAIT).reason == DiscQuitting


def _sender(rw, code, *elems):
    def go():
        try:
            send_items(rw, code, *elems)
        except (ErrPipeClosed, Exception):
            pass

    t = threading.Thread(target=go, name="test.SendItems", daemon=True)
    t.start()
    return t


def test_peer_disconnect_race():
    rnd = random.Random(1)
    for _ in range(1000):
        protoclose = queue.Queue()
        protodisc = queue.Queue()

        def closereq(p, rw):
            return protoclose.get()

        def disconnect(p, rw):
            p.disconnect(protodisc.get())
            return None

        tp = PeerHarness([
            Protocol(name="closereq", run=closereq, length=1),
            Protocol(name="disconnect", run=disconnect, length=1),
        ])
        extra = []
        # Two messages arrive from the remote.
        extra.append(_sender(tp.rw, baseProtocolLength + 1))
        extra.append(_sender(tp.rw, baseProtocolLength + 2))
        # The connection goes away under the peer.
        closer = threading.Thread(target=tp.close, name="test.closer")
        closer.start()
        extra.append(closer)
        # "closereq" ends with an error...
        protoclose.put(Exception("protocol closed"))
        # ...and "disconnect" asks the peer to disconnect.
        protodisc.put(DiscAlreadyConnected)
        # Sometimes something else calls disconnect, sometimes the remote asks to.
        if rnd.random() < 0.5:
            t = threading.Thread(target=tp.peer.disconnect, args=(DiscInvalidIdentity,), name="test.disc")
            t.start()
            extra.append(t)
        if rnd.random() < 0.5:
            extra.append(_sender(tp.rw, discMsg, DiscQuitting))

        # Peer.run must return quickly; if not, its threads are deadlocked.
        tp.result.get(timeout=WAIT)
        tp.thread.join(WAIT)
        for t in extra:
            t.join(WAIT)
            assert not t.is_alive()


def test_new_peer():
    name = "nodename"
    caps = [Cap("foo", 2), Cap("bar", 3)]
    nid = random_id()
    p = new_test_peer(nid, name, caps)
    assert p.id() == nid
    assert p.name() == name
    assert p.caps() == caps
    p.disconnect(DiscAlreadyConnected)  # must not hang
    assert str(p) == "Peer %s pipe" % nid[:8].hex()


def _pr(name="", version=0, length=0):
    return Protocol(name=name, version=version, length=length)


def test_match_protocols():
    tests = [
        # the remote offers nothing
        dict(local=[_pr("a")], remote=[], match={}),
        # we run nothing
        dict(local=[], remote=[Cap("a", 0)], match={}),
        # different names on each side
        dict(local=[_pr("b")], remote=[Cap("a", 0)], match={}),
        # two names shared, one on each side only
        dict(remote=[Cap("local", 0), Cap("match1", 0), Cap("match2", 0)],
             local=[_pr("match1"), _pr("match2"), _pr("remote")],
             match={"match1": ("match1", 0, 0), "match2": ("match2", 0, 0)}),
        # the same names listed in different orders
        dict(remote=[Cap("aa", 0), Cap("ab", 0), Cap("bb", 0), Cap("ba", 0)],
             local=[_pr("ba"), _pr("bb"), _pr("ab"), _pr("aa")],
             match={n: (n, 0, 0) for n in ("aa", "ab", "ba", "bb")}),
        # one name, no version in common
        dict(remote=[Cap("", 1)], local=[_pr(version=2)], match={}),
        # several versions, one in common
        dict(remote=[Cap("", 1), Cap("", 2)], local=[_pr(version=2), _pr(version=3)],
             match={"": ("", 2, 0)}),
        # several versions in common: the highest wins
        dict(remote=[Cap("", 1), Cap("", 2), Cap("", 3), Cap("", 4)], local=[_pr(version=2), _pr(version=3)],
             match={"": ("", 3, 0)}),
        # versions listed out of order: still the highest common one
        dict(remote=[Cap("", 4), Cap("", 1), Cap("", 3), Cap("", 2)],
             local=[_pr(version=2), _pr(version=3), _pr(version=1)],
             match={"": ("", 3, 0)}),
        # the winning version's length sets the next protocol's offset
        dict(remote=[Cap("", 1), Cap("", 2), Cap("", 3), Cap("a", 0)],
             local=[_pr(version=1, length=1), _pr(version=2, length=2), _pr(version=3, length=3), _pr("a")],
             match={"": ("", 3, 0), "a": ("a", 0, 3)}),
    ]
    for i, tt in enumerate(tests):
        result = match_protocols(tt["local"], tt["remote"], None)
        assert set(result) == set(tt["match"]), "test %d: negotiation mismatch" % i
        for name, proto in result.items():
            want_name, want_version, want_offset = tt["match"][name]
            assert proto.name == want_name, "test %d, proto %r: name mismatch" % (i, name)
            assert proto.version == want_version, "test %d, proto %r: version mismatch" % (i, name)
            assert proto.offset - baseProtocolLength == want_offset, "test %d, proto %r: offset mismatch" % (i, name)


# ---- tests geth lacks -------------------------------------------------------


def test_match_protocols_does_not_reorder_callers_caps():
    caps = [Cap("b", 1), Cap("a", 1)]
    result = match_protocols([_pr("a", 1, 4), _pr("b", 1, 2)], caps, None)
    assert caps == [Cap("b", 1), Cap("a", 1)]
    assert {n: p.offset for n, p in result.items()} == {"a": 16, "b": 20}


def test_peer_ping_loop_sends_pings(test_peer):
    tp = test_peer([], ping_interval=0.01)
    # The remote answers nothing; the peer keeps pinging on its interval.
    for _ in range(3):
        expect_msg(tp.rw, pingMsg, [])
    assert tp.result.empty()


class _DeadlineConn(PipeConn):
    """A transport whose reads expire, like rlpx's frame read deadline."""

    def __init__(self, rw, deadline, **kw):
        super().__init__(rw, **kw)
        self.deadline = deadline
        self.closed = threading.Event()
        self.armed = threading.Event()  # the read deadline starts once the test arms it

    def read_msg(self):
        self.armed.wait(WAIT)
        if self.closed.wait(self.deadline):
            raise ErrPipeClosed()
        raise TimeoutError("read timeout")

    def close(self, err):
        self.closed.set()
        super().close(err)


def test_peer_silent_remote_is_disconnected():
    # A remote that sends nothing (not even pongs) is dropped once the
    # transport's read deadline passes; pings keep going out meanwhile.
    fd1, fd2 = msg_pipe()
    c1 = _DeadlineConn(fd1, deadline=0.05)
    p = new_peer(c1, [])
    p.ping_interval = 0.01
    result = queue.Queue(maxsize=1)
    t = threading.Thread(target=lambda: result.put(p.run()), name="test.Peer.run")
    t.start()
    expect_msg(fd2, pingMsg, [])  # pings go out while the remote stays silent
    expect_msg(fd2, pingMsg, [])
    c1.armed.set()
    remote_requested, err = result.get(timeout=WAIT)
    t.join(WAIT)
    assert remote_requested is False
    assert isinstance(err, TimeoutError)
    assert c1.close_errs.get(timeout=WAIT).reason == DiscNetworkError
    fd2.close()


def test_peer_local_disconnect(test_peer):
    started = threading.Event()

    def run(peer, rw):
        started.set()
        rw.read_msg()  # blocks until the peer closes

    tp = test_peer([Protocol(name="a", length=1, run=run)])
    assert started.wait(WAIT)
    tp.peer.disconnect(DiscUselessPeer)
    remote_requested, err = tp.result.get(timeout=WAIT)
    assert remote_requested is False
    assert isinstance(err, DiscReasonError) and err.reason == DiscUselessPeer
    assert tp.c1.close_errs.get(timeout=WAIT).reason == DiscUselessPeer


def test_peer_protocol_error_is_subprotocol_error(test_peer):
    tp = test_peer([Protocol(name="a", length=1, run=lambda p, rw: ValueError("boom"))])
    err = tp.err()
    assert isinstance(err, ValueError)
    assert tp.c1.close_errs.get(timeout=WAIT).reason == DiscSubprotocolError


def test_peer_protocol_raising_is_an_error(test_peer):
    def run(p, rw):
        raise PeerError(1, "invalid message: bad")

    tp = test_peer([Protocol(name="a", length=1, run=run)])
    assert isinstance(tp.err(), PeerError)
    assert tp.c1.close_errs.get(timeout=WAIT).reason == DiscProtocolError


def test_peer_protocol_returned_means_quitting(test_peer):
    tp = test_peer([Protocol(name="a", length=1, run=lambda p, rw: None)])
    assert isinstance(tp.err(), ErrProtocolReturned)
    assert tp.c1.close_errs.get(timeout=WAIT).reason == DiscQuitting


def test_peer_msg_code_out_of_range(test_peer):
    tp = test_peer([])
    send_items(tp.rw, baseProtocolLength + 5)
    err = tp.err()
    assert "msg code out of range: 21" in str(err)
    assert tp.c1.close_errs.get(timeout=WAIT).reason == DiscNetworkError


def test_peer_ignores_other_base_protocol_messages(test_peer):
    tp = test_peer([])
    for code in range(4, baseProtocolLength):
        send_items(tp.rw, code, b"ignored")  # returns once discarded
    send_items(tp.rw, pingMsg)
    expect_msg(tp.rw, pongMsg, [])
    assert tp.result.empty()


def test_peer_write_after_close_is_shutting_down(test_peer):
    out = queue.Queue()
    go_on = threading.Event()

    def run(peer, rw):
        try:
            rw.read_msg()
        except EOFError as e:
            out.put(("read", e))
        go_on.wait(WAIT)
        try:
            send_items(rw, 0)
        except Exception as e:
            out.put(("write", e))
        return None

    tp = test_peer([Protocol(name="a", length=1, run=run)])
    tp.close()
    kind, e = out.get(timeout=WAIT)
    assert kind == "read" and isinstance(e, EOFError)
    go_on.set()
    kind, e = out.get(timeout=WAIT)
    assert kind == "write" and isinstance(e, ErrShuttingDown)
    assert isinstance(tp.err(), ErrPipeClosed)


def test_peer_received_at_is_set(test_peer):
    got = queue.Queue()

    def run(peer, rw):
        msg = rw.read_msg()
        msg.discard()
        got.put(msg)
        return None

    tp = test_peer([Protocol(name="a", length=1, run=run)])
    send_items(tp.rw, baseProtocolLength, 1)
    msg = got.get(timeout=WAIT)
    assert msg.code == 0 and msg.received_at is not None


def test_peer_writes_one_at_a_time(test_peer):
    # Two protocols write concurrently; every message arrives intact with its offset.
    n = 25

    def writer(code):
        def run(peer, rw):
            for i in range(n):
                send_items(rw, 0, code, i)
            rw.read_msg()

        return run

    tp = test_peer([Protocol(name="a", length=1, run=writer(1)), Protocol(name="b", length=1, run=writer(2))])
    seen = {16: [], 17: []}
    for _ in range(2 * n):
        msg = tp.rw.read_msg()
        code, i = msg.decode()
        seen[msg.code].append((code, i))
    assert [c for c, _ in seen[16]] == [b"\x01"] * n
    assert [c for c, _ in seen[17]] == [b"\x02"] * n
    assert [rlp.sedes.big_endian_int.deserialize(i) for _, i in seen[16]] == list(range(n))


def test_peer_msg_events(test_peer):
    feed = Feed()
    ch = queue.Queue()
    sub = feed.subscribe(ch)

    def run(peer, rw):
        msg = rw.read_msg()
        msg.discard()
        send_items(rw, 1, b"x")
        return None

    tp = test_peer([Protocol(name="a", length=2, run=run)], events=feed)
    send_items(tp.rw, baseProtocolLength, b"hi")
    expect_msg(tp.rw, baseProtocolLength + 1, [b"x"])
    assert isinstance(tp.err(), ErrProtocolReturned)
    events = [ch.get(timeout=WAIT), ch.get(timeout=WAIT)]
    sub.unsubscribe()
    assert [(e.type, e.protocol, e.msg_code) for e in events] == [
        (PeerEventTypeMsgRecv, "a", 0), (PeerEventTypeMsgSend, "a", 1)]
    assert all(e.peer == tp.c1.id for e in events)


def test_peer_info_and_flags(test_peer):
    proto = Protocol(name="a", version=2, length=1, run=lambda p, rw: rw.read_msg(), peer_info=lambda id: {"x": 1})
    tp = test_peer([proto, Protocol(name="b", length=1, run=lambda p, rw: rw.read_msg())],
                   flags=inboundConn | trustedConn)
    p = tp.peer
    assert p.inbound()
    info = p.info()
    assert info.id == tp.c1.id.hex()
    assert info.name == "test"
    assert info.caps == ["a/2", "b/0"]
    assert info.network.remote_address == "127.0.0.1:30303"
    assert info.network.local_address == "127.0.0.1:40404"
    assert (info.network.inbound, info.network.trusted, info.network.static) == (True, True, False)
    assert info.protocols == {"a": {"x": 1}, "b": "unknown"}
    d = info.to_dict()
    assert d["network"]["remoteAddress"] == "127.0.0.1:30303" and d["protocols"]["a"] == {"x": 1}
    json.dumps(d)
    assert str(p) == "Peer %s 127.0.0.1:30303" % tp.c1.id[:8].hex()


def test_peer_info_handshake_pending():
    p = new_peer(PipeConn(None, caps=[Cap("a", 1)], flags=staticDialedConn),
                 [Protocol(name="a", version=1, length=1, peer_info=lambda id: None)])
    info = p.info()
    assert info.protocols == {"a": "handshake"}
    assert info.network.static and not info.network.inbound
    assert not p.inbound()


def test_get_proto():
    p = new_peer(PipeConn(None, caps=[Cap("a", 1), Cap("b", 1)]),
                 [Protocol(name="a", version=1, length=3), Protocol(name="b", version=1, length=2)])
    assert p.get_proto(16).name == "a"
    assert p.get_proto(18).name == "a"
    assert p.get_proto(19).name == "b"
    assert p.get_proto(20).name == "b"
    with pytest.raises(PeerError) as ei:
        p.get_proto(21)
    assert ei.value.code == errInvalidMsgCode
    assert isinstance(p.running["a"], ProtoRW)


def test_peer_event_to_dict():
    nid = random_id()
    ev = PeerEvent(type=PeerEventTypeMsgSend, peer=nid, protocol="eth", msg_code=0, msg_size=3)
    assert ev.to_dict() == {"type": "msgsend", "peer": nid.hex(), "protocol": "eth", "msg_code": 0, "msg_size": 3}
    assert PeerEvent(type=PeerEventTypeMsgRecv, peer=nid).to_dict() == {"type": "msgrecv", "peer": nid.hex()}


# ---- protoHandshake ----------------------------------------------------------


def test_proto_handshake_eip8_vector():
    vec = json.loads((TESTDATA / "devp2p_hello.json").read_text())
    payload = bytes.fromhex(vec["payload"])
    hs = ProtoHandshake.decode(payload)
    assert hs.version == vec["version"]
    assert hs.name == vec["name"]
    assert [[c.name, c.version] for c in hs.caps] == vec["caps"]
    assert hs.listen_port == vec["listen_port"]
    assert hs.id == bytes.fromhex(vec["id"]) and isinstance(hs.id, NodeID)
    assert [rlp.encode(r).hex() for r in hs.rest] == vec["rest"]
    # through a message, as rlpx reads it
    assert Msg.from_bytes(handshakeMsg, payload).decode(ProtoHandshake) == hs
    assert hs.encode() == payload


def test_proto_handshake_roundtrip():
    nid = random_id()
    hs = ProtoHandshake(version=baseProtocolVersion, name="gethp2p/test", caps=[Cap("eth", 63), Cap("les", 2)],
                        listen_port=30303, id=nid)
    enc = rlp.encode(hs)
    assert rlp.decode(enc) == [b"\x05", b"gethp2p/test", [[b"eth", b"\x3f"], [b"les", b"\x02"]], b"\x76\x5f", nid]
    assert ProtoHandshake.decode(enc) == hs


@pytest.mark.parametrize("bad", [
    rlp.encode(b"notalist"),
    rlp.encode([5, b"name", [], 0]),  # too few elements
    rlp.encode([5, b"name", [], 0, b"\x01" * 63]),  # short id
    rlp.encode([5, [b"x"], [], 0, b"\x01" * 64]),  # name is a list
    rlp.encode([5, b"name", b"caps", 0, b"\x01" * 64]),  # caps not a list
    rlp.encode([5, b"name", [[b"eth"]], 0, b"\x01" * 64]),  # cap without version
    b"\xf8",  # truncated
])
def test_proto_handshake_bad_input(bad):
    with pytest.raises(PeerError):
        Msg.from_bytes(handshakeMsg, bad).decode(ProtoHandshake)


# ---- over a real RLPx transport (geth's testPeer uses rlpx over net.Pipe) --------


def _rlpx_pair():
    import socket

    from p2p import crypto, rlpx

    ts = []
    for s in socket.socketpair():
        t = rlpx.new_rlpx(s)
        t.rw = rlpx.new_rlpx_frame_rw(t.conn, rlpx.Secrets(
            mac=bytes(16), aes=bytes(16), ingress_mac=crypto.new_keccak256(), egress_mac=crypto.new_keccak256()))
        ts.append(t)
    return ts


class RLPxConn(PipeConn):
    """The server's conn over an rlpx transport (close takes the reason)."""

    def close(self, err):
        self.close_errs.put(err)
        self.transport.close(err)


def test_peer_over_rlpx():
    t1, t2 = _rlpx_pair()
    errors = []

    def run(peer, rw):
        try:
            expect_msg(rw, 0, [1])
            send_items(rw, 1, b"x")
        except Exception as e:
            errors.append(e)
        rw.read_msg()  # until the peer closes

    proto = Protocol(name="a", version=1, length=2, run=run)
    c1 = RLPxConn(t1, caps=[proto.cap()])
    p = new_peer(c1, [proto])
    result = queue.Queue(maxsize=1)
    th = threading.Thread(target=lambda: result.put(p.run()), name="test.Peer.run")
    th.start()
    try:
        send(t2, baseProtocolLength, [1])
        expect_msg(t2, baseProtocolLength + 1, [b"x"])
        send_items(t2, pingMsg)
        expect_msg(t2, pongMsg, [])
        p.disconnect(DiscUselessPeer)
        # The transport tells the remote why before closing.
        expect_msg(t2, discMsg, [int(DiscUselessPeer)])
        remote_requested, err = result.get(timeout=WAIT)
        assert remote_requested is False and err.reason == DiscUselessPeer
        assert errors == []
    finally:
        t2.close(None)
        t1.close(None)
        th.join(WAIT)


def test_peer_over_rlpx_remote_disconnect():
    t1, t2 = _rlpx_pair()
    p = new_peer(RLPxConn(t1), [])
    result = queue.Queue(maxsize=1)
    th = threading.Thread(target=lambda: result.put(p.run()), name="test.Peer.run")
    th.start()
    try:
        send_items(t2, discMsg, DiscAlreadyConnected)
        remote_requested, err = result.get(timeout=WAIT)
        assert remote_requested is True and err.reason == DiscAlreadyConnected
    finally:
        t2.close(None)
        th.join(WAIT)
