"""A connected remote node and the devp2p base protocol (geth's p2p/peer.go).

Threads (geth's goroutines) per running peer:

* ``p2p.Peer.readLoop`` reads messages from the connection and dispatches them,
* ``p2p.Peer.pingLoop`` sends a ping every ``ping_interval`` seconds,
* ``p2p.Peer.startProtocols:<name>`` runs each negotiated sub-protocol.

``Peer.run`` is geth's select loop: it owns one mailbox (``queue.Queue``)
whose message kinds are named after geth's channels (``writeErr``,
``readErr``, ``protoErr``, ``disc``).  geth's ``closed`` channel is a
:class:`_ClosedSignal` (a flag under a condition that every blocked
reader/writer of this peer waits on), and its ``writeStart`` token channel is
:class:`_WriteStart`: one sub-protocol write at a time.

Errors are exceptions: ``run()`` returns ``(remote_requested, err)`` where
``err`` is the exception that ended the peer.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from p2p import rlpcodec
from p2p.dial import inboundConn, staticDialedConn, trustedConn, ConnFlag
from p2p.discover.node import NodeID
from p2p.log import get_logger
# PeerEvent and its types (peer.go) live in message.py, which posts them, so that
# message.py need not import this module.
from p2p.message import (Handoff, MsgEventer, MsgReadWriter, Msg, PeerEvent, PeerEventType,  # noqa: F401
                         PeerEventTypeAdd, PeerEventTypeDrop, PeerEventTypeMsgRecv, PeerEventTypeMsgSend,
                         _id_str, send_items)
from p2p.netutil import addr_str
from p2p.peer_error import (
    DiscNetworkError,
    DiscReason,
    DiscReasonError,
    ErrProtocolReturned,
    PeerError,
    decode_disc_reason,
    disc_reason_for_error,
    errInvalidMsgCode,
    is_conn_error,
    new_peer_error,
)
from p2p.protocol import Cap, Protocol


class ErrShuttingDown(Exception):
    """A sub-protocol tried to write while its peer was shutting down."""

    def __init__(self, msg: str = "shutting down"):
        super().__init__(msg)


baseProtocolVersion = 5
baseProtocolLength = 16
baseProtocolMaxMsgSize = 2 * 1024

snappyProtocolVersion = 5

pingInterval = 15.0  # seconds

# The base protocol's message codes.
handshakeMsg = 0x00
discMsg = 0x01
pingMsg = 0x02
pongMsg = 0x03


_log = get_logger("p2p")


def _rlp_uint(b) -> int:
    if not isinstance(b, bytes):
        raise ValueError("expected an integer, got a list")
    return int.from_bytes(b, "big")


def _uint_bytes(v: int) -> bytes:
    # An unsigned integer as the bytes RLP writes for it (b"" for 0), for serialize.
    if v < 0:
        raise ValueError("rlp: cannot encode negative integer %d" % v)
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


class ProtoHandshake:
    """The devp2p Hello message: ``[version, name, caps, listen_port, id, ...]``.

    Decoding ignores any elements after ``id`` (EIP-8 forward compatibility);
    they are kept, decoded, in ``rest`` and re-encoded after ``id``.

    The class is an RLP sedes (``serialize``/``deserialize``), so
    ``rlp.encode(hs)`` and ``msg.decode(ProtoHandshake)`` both work; the latter
    reports bad input as ``PeerError(errInvalidMsg)``, like geth's Msg.Decode.
    """

    __slots__ = ("version", "name", "caps", "listen_port", "id", "rest")

    def __init__(self, version: int = 0, name: str = "", caps=(), listen_port: int = 0, id=None, rest=()):
        self.version = version
        self.name = name
        self.caps = list(caps)
        self.listen_port = listen_port
        self.id = id if id is not None else NodeID()
        self.rest = list(rest)

    # --- RLP sedes interface -------------------------------------------
    @staticmethod
    def serialize(hs: "ProtoHandshake") -> list:
        name = hs.name.encode() if isinstance(hs.name, str) else bytes(hs.name)
        items = [
            _uint_bytes(hs.version),
            name,
            [[c[0].encode() if isinstance(c[0], str) else bytes(c[0]),
              _uint_bytes(c[1])] for c in hs.caps],
            _uint_bytes(hs.listen_port),
            bytes(hs.id),
        ]
        items.extend(hs.rest)
        return items

    @classmethod
    def deserialize(cls, item) -> "ProtoHandshake":
        if not isinstance(item, (list, tuple)):
            raise ValueError("protoHandshake: expected a list")
        if len(item) < 5:
            raise ValueError("protoHandshake: too few elements (%d)" % len(item))
        version, name, caps, listen_port, nid = item[:5]
        if not isinstance(name, bytes):
            raise ValueError("protoHandshake: name is not a string")
        if not isinstance(caps, (list, tuple)):
            raise ValueError("protoHandshake: caps is not a list")
        if not isinstance(nid, bytes) or len(nid) != 64:
            raise ValueError("protoHandshake: node id must be 64 bytes")
        return cls(
            version=_rlp_uint(version),
            name=name.decode("utf-8", "replace"),
            caps=[Cap.from_rlp(c) for c in caps],
            listen_port=_rlp_uint(listen_port),
            id=NodeID(nid),
            rest=item[5:],
        )

    def encode(self) -> bytes:
        return rlpcodec.encode_raw(ProtoHandshake.serialize(self))

    @classmethod
    def decode(cls, data: bytes) -> "ProtoHandshake":
        return cls.deserialize(rlpcodec.decode(data, strict=False))

    def __eq__(self, other):
        if not isinstance(other, ProtoHandshake):
            return NotImplemented
        return (self.version, self.name, list(self.caps), self.listen_port, bytes(self.id), list(self.rest)) == (
            other.version, other.name, list(other.caps), other.listen_port, bytes(other.id), list(other.rest))

    def __repr__(self):
        return "ProtoHandshake(version=%d, name=%r, caps=%s, listen_port=%d, id=%s)" % (
            self.version, self.name, [str(c) for c in self.caps], self.listen_port, bytes(self.id)[:8].hex())


class _ClosedSignal:
    """geth's ``closed`` channel: a flag, and the condition everyone blocked on this peer waits on."""

    __slots__ = ("cond", "closed")

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self.closed = False

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until closed or ``timeout`` seconds passed; True if closed."""
        with self.cond:
            return self.cond.wait_for(lambda: self.closed, timeout)


class _WriteStart:
    """geth's ``writeStart`` channel (capacity 1): the token a sub-protocol takes to write."""

    __slots__ = ("_sig", "_token")

    def __init__(self, sig: _ClosedSignal):
        self._sig = sig
        self._token = False

    def put(self) -> None:
        sig = self._sig
        with sig.cond:
            self._token = True
            sig.cond.notify_all()

    def take(self) -> None:
        """Take the token; raise ErrShuttingDown if the peer closes first."""
        sig = self._sig
        with sig.cond:
            while not self._token and not sig.closed:
                sig.cond.wait()
            if sig.closed:
                raise ErrShuttingDown()
            self._token = False


class _PipeAddr:
    """Stands in for the fd of a test peer: its addresses print as "pipe" (like Go's net.Pipe)."""

    @staticmethod
    def getpeername():
        return "pipe"

    @staticmethod
    def getsockname():
        return "pipe"


class _TestConn:
    """The minimal server ``Conn`` behind :func:`new_test_peer` (no transport)."""

    def __init__(self, id, name, caps):
        self.fd = _PipeAddr()
        self.transport = None
        self.flags = ConnFlag(0)
        self.id = id
        self.caps = list(caps)
        self.name = name

    def close(self, err=None):
        pass


def new_test_peer(id, name: str, caps) -> "Peer":
    """geth's exported NewPeer: a peer for tests, with no connection, never run.

    (Python has one namespace for geth's NewPeer and newPeer; ``new_peer`` is
    the server's constructor.)  Disconnect on it does nothing.
    """
    peer = new_peer(_TestConn(id, name, caps), None)
    peer._closed.close()  # disconnect must not block / queue anything
    return peer


def new_peer(conn, protocols) -> "Peer":
    """The peer for an established server connection (geth's newPeer)."""
    protomap = match_protocols(protocols or [], conn.caps, conn)
    return Peer(conn, protomap)


def count_matching_protocols(protocols, caps) -> int:
    n = 0
    for cap in caps:
        for proto in protocols:
            if proto.name == cap.name and proto.version == cap.version:
                n += 1
    return n


def match_protocols(protocols, caps, rw) -> Dict[str, "ProtoRW"]:
    """Pair our protocols with the remote caps; each gets a code range after the base protocol.

    Caps are taken in name/version order, so for a name shared at several
    versions the highest common version wins (replacing the earlier match).
    """
    offset = baseProtocolLength
    result: Dict[str, ProtoRW] = {}
    for cap in sorted(caps):
        for proto in protocols:
            if proto.name == cap.name and proto.version == cap.version:
                # A newer version of a name matched before replaces it: give back its codes.
                old = result.get(cap.name)
                if old is not None:
                    offset -= old.length
                result[cap.name] = ProtoRW(proto, offset, rw)
                offset += proto.length
                break
    return result


class Peer:
    """A connected remote node."""

    def __init__(self, conn, running: Dict[str, "ProtoRW"]):
        self.rw = conn
        self.running = running
        self.created = time.monotonic()
        self._closed = _ClosedSignal()
        self._mailbox: "queue.Queue" = queue.Queue()  # writeErr, readErr, protoErr, disc
        self._threads: List[threading.Thread] = []
        self.log = _log.new(id=conn.id, conn=conn.flags)
        # The server's peer feed when message events are on: each message in or out is posted there.
        self.events = None
        self.ping_interval = pingInterval
        # Pongs owed to the remote, sent by at most one thread at a time. (geth
        # starts a goroutine per ping; a thread per ping let a peer that floods
        # pings and never reads pile up thousands of blocked threads.)
        self._pong_lock = threading.Lock()
        self._pongs_owed = 0
        self._pong_sender = False

    def id(self) -> NodeID:
        """The remote node's ID (its public key)."""
        return self.rw.id

    def name(self) -> str:
        """The node name the remote node advertised."""
        return self.rw.name

    def caps(self) -> List[Cap]:
        """The capabilities (sub-protocols) the remote node advertised."""
        return self.rw.caps

    def remote_addr(self) -> Any:
        return self.rw.fd.getpeername()

    def local_addr(self) -> Any:
        return self.rw.fd.getsockname()

    def disconnect(self, reason: DiscReason) -> None:
        """Ask the peer to close with ``reason``; returns at once."""
        if not self._closed.closed:
            self._mailbox.put(("disc", DiscReasonError(reason)))

    def __str__(self):
        return "Peer %s %s" % (bytes(self.rw.id)[:8].hex(), addr_str(self.remote_addr()))

    def inbound(self) -> bool:
        return self.rw.flags & inboundConn != 0

    def run(self) -> Tuple[bool, Optional[BaseException]]:
        """Run the peer until it ends; return ``(remote_requested, err)``."""
        write_start = _WriteStart(self._closed)
        remote_requested = False
        err = None
        reason = DiscNetworkError

        self._spawn(self._read_loop, "p2p.Peer.readLoop")
        self._spawn(self._ping_loop, "p2p.Peer.pingLoop")

        # The first write token, then one thread per sub-protocol.
        write_start.put()
        self.start_protocols(write_start)

        # Until a loop reports an error or someone asks to disconnect.
        mailbox = self._mailbox
        while True:
            kind, value = mailbox.get()
            if kind == "writeErr":
                # A write finished: allow the next one unless it failed.
                if value is not None:
                    err = value
                    reason = DiscNetworkError
                    break
                write_start.put()
            elif kind == "readErr":
                err = value
                if isinstance(err, DiscReasonError):
                    remote_requested = True
                    reason = err.reason
                else:
                    reason = DiscNetworkError
                break
            elif kind == "protoErr":
                err = value
                reason = disc_reason_for_error(err)
                break
            elif kind == "disc":
                err = value
                reason = disc_reason_for_error(err)
                break

        self._closed.close()
        try:
            self.rw.close(DiscReasonError(reason))
        except Exception as e:  # Go's close returns nothing; never leave the threads behind
            self.log.debug("Error closing connection", err=e)
        for t in self._threads:
            t.join()
        return remote_requested, err

    def _spawn(self, target, name: str, *args) -> threading.Thread:
        t = threading.Thread(target=target, name=name, args=args, daemon=True)
        self._threads.append(t)
        t.start()
        return t

    def _ping_loop(self) -> None:
        interval = self.ping_interval
        while not self._closed.wait(interval):
            try:
                send_items(self.rw, pingMsg)
            except Exception as e:
                if not is_conn_error(e):
                    self.log.error("Sending a ping failed", err=e, exc_info=e)
                self._mailbox.put(("protoErr", e))
                return

    def _read_loop(self) -> None:
        read_msg = self.rw.read_msg
        handle = self.handle
        while True:
            try:
                msg = read_msg()
                msg.received_at = time.time()
                handle(msg)
            except Exception as e:
                if not is_conn_error(e):
                    self.log.error("Peer read loop failed", err=e, exc_info=e)
                self._mailbox.put(("readErr", e))
                return

    def _send_pongs(self) -> None:
        """Send the pongs owed, one per ping received; stop at the first write error."""
        while True:
            with self._pong_lock:
                if self._pongs_owed == 0:
                    self._pong_sender = False
                    return
                self._pongs_owed -= 1
            try:
                send_items(self.rw, pongMsg)
            except Exception as e:
                if is_conn_error(e):
                    self.log.trace("Failed to send pong", err=e)
                else:
                    self.log.error("Sending a pong failed", err=e, exc_info=e)
                with self._pong_lock:
                    self._pongs_owed = 0
                    self._pong_sender = False
                return

    def handle(self, msg: Msg) -> None:
        """Dispatch one message read from the connection; raise to end the peer."""
        code = msg.code
        if code == pingMsg:
            msg.discard()
            with self._pong_lock:
                self._pongs_owed += 1
                start = not self._pong_sender
                self._pong_sender = True
            if start:
                threading.Thread(target=self._send_pongs, name="p2p.Peer.handle", daemon=True).start()
        elif code == discMsg:
            # The last message: the connection closes after it, so a
            # malformed reason is read as DiscRequested (0), like geth.
            raise DiscReasonError(decode_disc_reason(msg.payload.read()))
        elif code < baseProtocolLength:
            # base protocol codes we have no use for are skipped
            msg.discard()
        else:
            # the code belongs to one of the running sub-protocols
            try:
                proto = self.get_proto(code)
            except PeerError:
                raise PeerError(errInvalidMsgCode, "msg code out of range: %d" % code) from None
            proto._in.send(msg, self._closed, EOFError)

    def start_protocols(self, write_start: _WriteStart) -> None:
        for proto in self.running.values():
            proto._closed = self._closed
            proto._wstart = write_start
            proto._werr = self._mailbox
            rw = proto
            if self.events is not None:
                rw = MsgEventer(rw, self.events, self.id(), proto.name)
            self.log.trace("Starting protocol %s/%d" % (proto.name, proto.version))
            self._spawn(self._run_protocol, "p2p.Peer.startProtocols:" + proto.name, proto, rw)

    def _run_protocol(self, proto: "ProtoRW", rw: MsgReadWriter) -> None:
        try:
            err = proto.run(self, rw)
        except Exception as e:  # a raised error is the protocol's returned error
            err = e
        if err is None:
            self.log.trace("Protocol %s/%d returned" % (proto.name, proto.version))
            err = ErrProtocolReturned()
        elif not isinstance(err, EOFError):
            self.log.trace("Protocol %s/%d failed" % (proto.name, proto.version), err=err)
        self._mailbox.put(("protoErr", err))

    def get_proto(self, code: int) -> "ProtoRW":
        """The running protocol whose code range contains ``code``."""
        for proto in self.running.values():
            if proto.offset <= code < proto.offset + proto.length:
                return proto
        raise new_peer_error(errInvalidMsgCode, "%d", code)

    def info(self) -> "PeerInfo":
        """Metadata about this peer and its running protocols."""
        info = PeerInfo(
            id=_id_str(self.id()),
            name=self.name(),
            caps=[str(c) for c in self.caps()],
            protocols={},
        )
        info.network.local_address = addr_str(self.local_addr())
        info.network.remote_address = addr_str(self.remote_addr())
        flags = self.rw.flags
        info.network.inbound = flags & inboundConn != 0
        info.network.trusted = flags & trustedConn != 0
        info.network.static = flags & staticDialedConn != 0
        for proto in self.running.values():
            proto_info = "unknown"
            query = proto.protocol.peer_info
            if query is not None:
                metadata = query(self.id())
                proto_info = metadata if metadata is not None else "handshake"
            info.protocols[proto.name] = proto_info
        return info


class ProtoRW(MsgReadWriter):
    """A sub-protocol's view of the connection: its own message codes from 0."""

    __slots__ = ("protocol", "offset", "w", "_in", "_closed", "_wstart", "_werr")

    def __init__(self, protocol: Protocol, offset: int, w):
        self.protocol = protocol
        self.offset = offset
        self.w = w
        self._in = Handoff()  # receives read messages (geth's unbuffered in channel)
        self._closed: Optional[_ClosedSignal] = None  # set when the peer starts the protocol
        self._wstart: Optional[_WriteStart] = None
        self._werr: Optional[queue.Queue] = None  # the peer's mailbox; gets ("writeErr", err)

    # geth's protoRW embeds Protocol
    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def version(self) -> int:
        return self.protocol.version

    @property
    def length(self) -> int:
        return self.protocol.length

    @property
    def run(self):
        return self.protocol.run

    def write_msg(self, msg: Msg) -> None:
        if msg.code >= self.length:
            raise new_peer_error(errInvalidMsgCode, "not handled")
        out = Msg(msg.code + self.offset, msg.size, msg.payload, msg.received_at)
        self._wstart.take()  # raises ErrShuttingDown when the peer closes
        try:
            self.w.write_msg(out)
        except Exception as e:
            # Peer.run shuts down on a failed write and lets the next one
            # start otherwise.
            self._werr.put(("writeErr", e))
            raise
        self._werr.put(("writeErr", None))

    def read_msg(self) -> Msg:
        msg = self._in.recv(self._closed, EOFError)
        msg.code -= self.offset
        return msg


@dataclasses.dataclass
class PeerNetworkInfo:
    local_address: str = ""
    remote_address: str = ""
    inbound: bool = False
    trusted: bool = False
    static: bool = False


@dataclasses.dataclass
class PeerInfo:
    """A summary of a connected peer; ``protocols`` holds sub-protocol metadata."""

    id: str = ""
    name: str = ""
    caps: List[str] = dataclasses.field(default_factory=list)
    network: PeerNetworkInfo = dataclasses.field(default_factory=PeerNetworkInfo)
    protocols: Dict[str, object] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """The info with geth's JSON field names."""
        return {
            "id": self.id,
            "name": self.name,
            "caps": list(self.caps),
            "network": {
                "localAddress": self.network.local_address,
                "remoteAddress": self.network.remote_address,
                "inbound": self.network.inbound,
                "trusted": self.network.trusted,
                "static": self.network.static,
            },
            "protocols": dict(self.protocols),
        }
