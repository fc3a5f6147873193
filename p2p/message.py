"""devp2p messages and message streams (geth's p2p/message.go).

Go returns errors; this port raises them. ``read_msg``/``write_msg`` raise
(:class:`ErrPipeClosed`, ``EOFError`` for Go's ``io.EOF``, socket errors, ...)
instead of returning ``(Msg, error)``.

A message payload is any object with a ``read(n=-1)`` method; in practice an
``io.BytesIO`` over the already-decoded frame.  :meth:`Msg.payload_bytes`
returns the rest of the payload as ``bytes``; on a fresh ``BytesIO`` built from
a ``bytes`` object CPython hands back that same object, so fast paths (the RLPx
frame writer) get the bytes without a copy.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import io
import threading
from typing import Optional

from p2p import rlpcodec
from p2p.peer_error import errInvalidMsg, new_peer_error


class Msg:
    """One devp2p message.

    A Msg can be sent only once: sending consumes its payload stream.  To send
    the same content again, build a new Msg over the encoded bytes.
    """

    __slots__ = ("code", "size", "payload", "received_at")

    def __init__(self, code: int = 0, size: int = 0, payload=None, received_at: float | None = None):
        self.code = code
        self.size = size
        self.payload = payload if payload is not None else io.BytesIO(b"")
        self.received_at = received_at

    @classmethod
    def from_bytes(cls, code: int, data: bytes, received_at: float | None = None) -> "Msg":
        """A message whose payload is ``data`` (no copy is made)."""
        return cls(code, len(data), io.BytesIO(data), received_at)

    def decode(self, sedes=None):
        """Decode the RLP payload; ``sedes=None`` gives raw nested lists of bytes.

        ``sedes`` is anything with a ``deserialize(item)`` method: a pyrlp sedes or
        ``rlp.Serializable`` class, or :class:`p2p.peer.ProtoHandshake`. Raises
        PeerError(errInvalidMsg) on malformed content.
        """
        try:
            data = self.payload.read(self.size)
            if len(data) < self.size:
                raise EOFError("unexpected EOF")
            item = rlpcodec.decode(data, strict=False)
            return item if sedes is None else sedes.deserialize(item)
        except Exception as e:  # any decoding failure is the peer's fault
            raise new_peer_error(errInvalidMsg, "(code %x) (size %d) %s", self.code, self.size, e) from e

    def __str__(self):
        return "msg #%d (%d bytes)" % (self.code, self.size)

    __repr__ = __str__

    def discard(self) -> None:
        """Read and drop whatever is left of the payload."""
        self.payload.read()

    def payload_bytes(self) -> bytes:
        """Consume the rest of the payload and return it (zero-copy on a fresh BytesIO)."""
        data = self.payload.read()
        return data if isinstance(data, bytes) else bytes(data)


class MsgReader(abc.ABC):
    @abc.abstractmethod
    def read_msg(self) -> Msg:
        """Return the next message; raise on error."""


class MsgWriter(abc.ABC):
    @abc.abstractmethod
    def write_msg(self, msg: Msg) -> None:
        """Send ``msg``; blocks until its payload has been consumed by the other end."""


class MsgReadWriter(MsgReader, MsgWriter):
    """Reads and writes messages; implementations allow concurrent read and write."""


def send(w: MsgWriter, msgcode: int, data) -> None:
    """RLP-encode ``data`` (normally a list) and write it as message ``msgcode``."""
    payload = rlpcodec.encode(data)
    w.write_msg(Msg(msgcode, len(payload), io.BytesIO(payload)))


def send_items(w: MsgWriter, msgcode: int, *elems) -> None:
    """Write a message whose payload is the RLP list of ``elems``."""
    send(w, msgcode, list(elems))


class EofSignal:
    """Wraps a payload reader and signals ``eof`` once the payload is used up.

    ``eof`` is anything with a ``set()`` method (e.g. ``threading.Event``).  It
    is set once, when ``count`` bytes have been read or the wrapped reader ends
    (a short read).  As in geth, a zero-size payload may never be read at all.
    """

    __slots__ = ("wrapped", "count", "eof")

    def __init__(self, wrapped, count: int, eof):
        self.wrapped = wrapped
        self.count = count
        self.eof = eof

    def _signal(self):
        eof = self.eof
        if eof is not None:
            self.eof = None
            eof.set()

    def read(self, n: int = -1) -> bytes:
        if self.count == 0:
            self._signal()
            return b""
        want = self.count if n is None or n < 0 or n > self.count else n
        if want == 0:
            return b""
        data = self.wrapped.read(want)
        self.count -= len(data)
        if self.count == 0 or len(data) < want:
            self._signal()  # tell the sender the message has been consumed
        return data


class ErrPipeClosed(Exception):
    """Read or write on a closed message pipe."""

    def __init__(self, msg: str = "p2p: read or write on closed message pipe"):
        super().__init__(msg)


class _PipeShared:
    """State shared by both ends of a pipe: one lock/condition and the closed flag."""

    __slots__ = ("cond", "closed")

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self.closed = False


class Handoff:
    """An unbuffered channel, Go's ``make(chan T)``: ``send`` returns once ``recv`` took the value.

    It has no lock of its own: ``sig`` is its owner's state, any object with a
    ``cond`` (a Condition) and a ``closed`` flag, so that closing the owner wakes
    every sender and receiver. Once closed, both raise ``closed_error``. Used by the
    message pipe and by a peer's per-protocol ``in`` channel.
    """

    __slots__ = ("_box",)

    def __init__(self):
        self._box = None  # [value, taken] while a sender offers a value

    def send(self, value, sig, closed_error) -> None:
        box = [value, False]
        cond = sig.cond
        with cond:
            while self._box is not None and not sig.closed:
                cond.wait()  # another sender's value is being handed over
            if sig.closed:
                raise closed_error()
            self._box = box
            cond.notify_all()
            while not box[1] and not sig.closed:
                cond.wait()
            if not box[1]:
                if self._box is box:
                    self._box = None
                raise closed_error()

    def recv(self, sig, closed_error):
        cond = sig.cond
        with cond:
            while (self._box is None or self._box[1]) and not sig.closed:
                cond.wait()
            if sig.closed:
                raise closed_error()
            box = self._box
            self._box = None
            box[1] = True
            cond.notify_all()
        return box[0]


class _Consumed:
    """The eof target of a piped payload: flags consumption and wakes the writer."""

    __slots__ = ("cond", "flag")

    def __init__(self, cond):
        self.cond = cond
        self.flag = False

    def set(self):
        with self.cond:
            self.flag = True
            self.cond.notify_all()


def msg_pipe():
    """A full-duplex in-memory message pipe; returns its two ends.

    Like geth's MsgPipe over unbuffered channels, a write returns only after
    the other end has read the message and consumed its payload.
    """
    shared = _PipeShared()
    c1, c2 = Handoff(), Handoff()
    return MsgPipeRW(c1, c2, shared), MsgPipeRW(c2, c1, shared)


class MsgPipeRW(MsgReadWriter):
    """One end of a :func:`msg_pipe`."""

    __slots__ = ("_w", "_r", "_shared")

    def __init__(self, w: Handoff, r: Handoff, shared: _PipeShared):
        self._w = w
        self._r = r
        self._shared = shared

    def write_msg(self, msg: Msg) -> None:
        """Send ``msg`` through the pipe; returns once the reader consumed the payload."""
        shared = self._shared
        cond = shared.cond
        consumed = _Consumed(cond)
        self._w.send(Msg(msg.code, msg.size, EofSignal(msg.payload, msg.size, consumed), msg.received_at),
                     shared, ErrPipeClosed)
        if msg.size > 0:
            with cond:
                # wait for the payload to be read or discarded
                while not consumed.flag and not shared.closed:
                    cond.wait()

    def read_msg(self) -> Msg:
        """Return the next message written on the other end."""
        return self._r.recv(self._shared, ErrPipeClosed)

    def close(self) -> None:
        """Close both ends: blocked and later reads/writes raise ErrPipeClosed."""
        shared = self._shared
        with shared.cond:
            if shared.closed:
                return
            shared.closed = True
            shared.cond.notify_all()


def expect_msg(r: MsgReader, code: int, content) -> None:
    """Read a message and check its code and RLP content (None: discard unchecked).

    Raises ValueError on a mismatch.
    """
    msg = r.read_msg()
    if msg.code != code:
        raise ValueError("message code mismatch: got %d, expected %d" % (msg.code, code))
    if content is None:
        msg.discard()
        return
    content_enc = rlpcodec.encode(content)
    if msg.size != len(content_enc):
        raise ValueError("message size mismatch: got %d, want %d" % (msg.size, len(content_enc)))
    actual = msg.payload.read()
    if actual != content_enc:
        raise ValueError("message payload mismatch:\ngot:  %s\nwant: %s" % (actual.hex(), content_enc.hex()))


# geth declares PeerEvent in peer.go; it lives here, beside the MsgEventer that posts
# it, so that this module need not import peer.py (which imports this one).
class PeerEventType(str, enum.Enum):
    """Kinds of peer events the server posts on its peer feed."""

    PeerEventTypeAdd = "add"
    PeerEventTypeDrop = "drop"
    PeerEventTypeMsgSend = "msgsend"
    PeerEventTypeMsgRecv = "msgrecv"

    def __str__(self):
        return self.value


PeerEventTypeAdd = PeerEventType.PeerEventTypeAdd
PeerEventTypeDrop = PeerEventType.PeerEventTypeDrop
PeerEventTypeMsgSend = PeerEventType.PeerEventTypeMsgSend
PeerEventTypeMsgRecv = PeerEventType.PeerEventTypeMsgRecv


@dataclasses.dataclass
class PeerEvent:
    """A peer was added or dropped, or a message was sent to / received from it."""

    type: PeerEventType
    peer: object = None
    error: str = ""
    protocol: str = ""
    msg_code: Optional[int] = None
    msg_size: Optional[int] = None

    def to_dict(self) -> dict:
        """The event with geth's JSON field names (empty optional fields left out)."""
        d = {"type": str(self.type), "peer": _id_str(self.peer)}
        if self.error:
            d["error"] = self.error
        if self.protocol:
            d["protocol"] = self.protocol
        if self.msg_code is not None:
            d["msg_code"] = self.msg_code
        if self.msg_size is not None:
            d["msg_size"] = self.msg_size
        return d


def _id_str(nid) -> str:
    # The hex form geth's JSON gives a NodeID (PeerEvent.to_dict, PeerInfo).
    if nid is None:
        return ""
    if type(nid) is bytes or type(nid) is bytearray:
        return nid.hex()
    return str(nid)


# The constructor comes before the class, as newMsgEventer before msgEventer's methods in geth.
def new_msg_eventer(rw: MsgReadWriter, feed, peer_id, proto: str) -> MsgEventer:
    return MsgEventer(rw, feed, peer_id, proto)


class MsgEventer(MsgReadWriter):
    """Wraps a MsgReadWriter and posts a PeerEvent on ``feed`` for each message."""

    def __init__(self, rw: MsgReadWriter, feed, peer_id, proto: str):
        self.rw = rw
        self.feed = feed
        self.peer_id = peer_id
        self.protocol = proto

    def read_msg(self) -> Msg:
        """Read from the wrapped rw and post a "msgrecv" event."""
        msg = self.rw.read_msg()
        self.feed.send(PeerEvent(
            type=PeerEventTypeMsgRecv, peer=self.peer_id, protocol=self.protocol,
            msg_code=msg.code, msg_size=msg.size,
        ))
        return msg

    def write_msg(self, msg: Msg) -> None:
        """Write to the wrapped rw and post a "msgsend" event."""
        self.rw.write_msg(msg)
        self.feed.send(PeerEvent(
            type=PeerEventTypeMsgSend, peer=self.peer_id, protocol=self.protocol,
            msg_code=msg.code, msg_size=msg.size,
        ))

    def close(self) -> None:
        """Close the wrapped rw if it can be closed."""
        close = getattr(self.rw, "close", None)
        if close is not None:
            close()
