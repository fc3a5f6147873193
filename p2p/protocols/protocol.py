"""Typed devp2p sub-protocols (geth's p2p/protocols/protocol.go).

A :class:`Spec` lists a protocol's message types; a message's code is its
index in that list. A :class:`Peer` sends typed messages (``send(msg)`` finds
the code from the message's class) and runs a handler on every message it
receives, decoded into its class. Message classes are ``rlp.Serializable``
subclasses (geth's reflected Go structs), for example::

    class Hs0(rlp.Serializable):
        fields = [("C", big_endian_int)]

Every message travels wrapped, as in geth: ``[context, size, payload]``, where
``payload`` is the message's RLP and ``context`` carries a tracing span when
tracing is on. Tracing (swarm's opentracing) is not ported: the context we
send is always empty and a received one is ignored. Go's ``context.Context``
arguments are dropped; the handshake takes a timeout instead.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Optional

import rlp
from rlp.sedes import big_endian_int, binary

from p2p import message as p2p_message
from p2p import metrics
from p2p.log import get_logger
from p2p.peer_error import DiscSubprotocolError

log = get_logger("p2p.protocols")

# geth's "peer.handleincoming.error" and "peer.send" counters (its metrics registry is not ported).
handleIncomingErrorCounter = metrics.Counter()
sendCounter = metrics.Counter()

ErrMsgTooLong = 0
ErrDecode = 1
ErrWrite = 2
ErrInvalidMsgCode = 3
ErrInvalidMsgType = 4
ErrHandshake = 5
ErrNoHandler = 6
ErrHandler = 7

errorToString = {
    ErrMsgTooLong: "Message too long",
    ErrDecode: "Invalid message (RLP error)",
    ErrWrite: "Error sending message",
    ErrInvalidMsgCode: "Invalid message code",
    ErrInvalidMsgType: "Invalid message type",
    ErrHandshake: "Handshake error",
    ErrNoHandler: "No handler registered error",
    ErrHandler: "Message handler error",
}


class Error(Exception):
    """A protocol error: ``code`` (one of the Err* constants) and details.

    Prints as ``<description>: <details>``, the description from errorToString.
    """

    def __init__(self, code: int, format: str = "", params=()):
        if code not in errorToString:
            raise ValueError("invalid message code")
        self.code = code
        self.format = format
        self.params = tuple(params)
        super().__init__(self.error())

    def error(self) -> str:
        message = errorToString[self.code]
        if self.format != "":
            message += ": " + (self.format % self.params if self.params else self.format)
        return message

    __str__ = error

    def __eq__(self, other):
        return isinstance(other, Error) and (self.code, str(self)) == (other.code, str(other))

    __hash__ = Exception.__hash__


def errorf(code: int, format: str, *params) -> Error:
    """An Error with details ``format % params`` (``%s`` for Go's ``%v``)."""
    return Error(code, format, params)


class WrappedMsg(rlp.Serializable):
    """What goes on the wire: a tracing context, the payload's size and the payload."""

    fields = [
        ("Context", binary),
        ("Size", big_endian_int),
        ("Payload", binary),
    ]


class Spec:
    """A protocol: name, version, largest message payload accepted, and its message classes."""

    def __init__(self, name: str = "", version: int = 0, max_msg_size: int = 0, messages=()):
        self.name = name
        self.version = version
        self.max_msg_size = max_msg_size
        # One class per message; its index is its code. A class may appear once.
        self.messages = list(messages)
        self._init_once = threading.Lock()
        self._codes: Optional[dict] = None
        self._types: Optional[dict] = None

    def _init(self) -> None:
        # geth's initOnce: build the code <-> class maps on first use
        if self._codes is not None:
            return
        with self._init_once:
            if self._codes is not None:
                return
            codes, types = {}, {}
            for i, msg in enumerate(self.messages):
                typ = msg if isinstance(msg, type) else type(msg)  # a class or an instance, as geth takes values
                codes[typ] = i
                types[i] = typ
            self._types = types
            self._codes = codes

    def length(self) -> int:
        """How many message codes the protocol uses."""
        return len(self.messages)

    def get_code(self, msg):
        """``(code, True)`` for a message (or message class) of this spec, ``(0, False)`` otherwise."""
        self._init()
        typ = msg if isinstance(msg, type) else type(msg)
        code = self._codes.get(typ)
        if code is None:
            return 0, False
        return code, True

    def new_msg(self, code: int):
        """``(class, True)`` of the message with ``code``, ``(None, False)`` if none.

        geth returns a new zero value to decode into; Python decodes into a new
        object directly, so the class is what the caller needs.
        """
        self._init()
        typ = self._types.get(code)
        if typ is None:
            return None, False
        return typ, True


def new_peer(p, rw, spec: Spec) -> Peer:
    """A protocols Peer over the p2p peer ``p`` and its protocol's ``rw``."""
    return Peer(p, rw, spec)


class Peer:
    """A peer speaking a Spec's protocol over ``rw`` (geth embeds the p2p.Peer)."""

    __slots__ = ("peer", "rw", "spec")

    def __init__(self, p, rw, spec: Spec):
        self.peer = p  # the p2p.Peer of the remote
        self.rw = rw
        self.spec = spec

    def __getattr__(self, name):
        # Go embeds *p2p.Peer: its methods (id, inbound, disconnect, ...) are ours.
        if name == "peer":
            raise AttributeError(name)
        return getattr(self.peer, name)

    def run(self, handler: Callable) -> Exception:
        """Handle incoming messages with ``handler(msg)`` until one fails; returns that error."""
        while True:
            try:
                self.handle_incoming(handler)
            except Exception as err:  # the error that ends the protocol is returned, as in geth
                if not isinstance(err, EOFError):
                    handleIncomingErrorCounter.inc(1)
                    log.error("peer.handleIncoming", err=err)
                return err

    def drop(self, err) -> None:
        """Disconnect the peer with a subprotocol error (``err`` is not sent, as in geth)."""
        self.peer.disconnect(DiscSubprotocolError)

    def send(self, msg) -> None:
        """Send ``msg`` with its code from the spec; Error(ErrInvalidMsgType) for a foreign message."""
        sendCounter.inc(1)
        r = rlp.encode(msg)
        wmsg = WrappedMsg(Context=b"", Size=len(r), Payload=r)
        code, found = self.spec.get_code(msg)
        if not found:
            raise errorf(ErrInvalidMsgType, "%s", code)
        p2p_message.send(self.rw, code, wmsg)

    def handle_incoming(self, handle: Callable) -> None:
        """Read one message, decode it into its class and call ``handle`` on it."""
        msg = self.rw.read_msg()
        try:
            if msg.size > self.spec.max_msg_size:
                raise errorf(ErrMsgTooLong, "%s > %s", msg.size, self.spec.max_msg_size)
            wmsg = msg.decode(WrappedMsg)
            # A tracing context (wmsg.Context) would be read here; tracing is not ported.
            typ, ok = self.spec.new_msg(msg.code)
            if not ok:
                raise errorf(ErrInvalidMsgCode, "%s", msg.code)
            try:
                val = rlp.decode(wmsg.Payload, sedes=typ)
            except (rlp.DecodingError, rlp.DeserializationError) as err:
                raise errorf(ErrDecode, "<= %s: %s", msg, err) from None
            try:
                handle(val)
            except Exception as err:  # the handler's error becomes ErrHandler, as in geth
                raise errorf(ErrHandler, "(msg code %s): %s", msg.code, err) from err
        finally:
            msg.discard()  # the payload must be consumed whatever happened

    def handshake(self, hs, verify: Optional[Callable] = None, timeout: float = 1.0):
        """Send ``hs`` and receive the remote's, checked by ``verify``; returns the remote's.

        The inbound side receives first, the dialer sends first. Any failure,
        or ``timeout`` seconds passing (geth's context), raises Error(ErrHandshake).
        """
        if not self.spec.get_code(hs)[1]:
            raise errorf(ErrHandshake, "unknown handshake message type: %s", type(hs).__name__)
        errc: "queue.Queue" = queue.Queue(maxsize=2)
        rhs = []

        def handle(msg):
            rhs.append(msg)
            if verify is not None:
                verify(msg)

        def send():
            try:
                self.send(hs)
                errc.put(None)
            except Exception as err:  # reported to the waiting caller
                errc.put(err)

        def receive():
            try:
                self.handle_incoming(handle)
                errc.put(None)
            except Exception as err:  # reported to the waiting caller
                errc.put(err)

        def exchange():
            if self.peer.inbound():
                receive()
                send()
            else:
                send()
                receive()

        # The exchange thread ends once both steps have; a step blocked past the
        # timeout ends when the peer's connection closes.
        threading.Thread(target=exchange, name="protocols.Peer.Handshake", daemon=True).start()
        deadline = time.monotonic() + timeout
        for _ in range(2):
            try:
                err = errc.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                err = TimeoutError("context deadline exceeded")
            if err is not None:
                raise errorf(ErrHandshake, str(err))
        return rhs[0]
