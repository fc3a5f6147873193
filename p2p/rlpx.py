"""The RLPx transport (geth's p2p/rlpx.go): encryption handshake and framing.

An RLPx connection starts with the *encryption handshake*: the dialer sends an
ECIES-encrypted ``auth`` message, the listener answers with an ``ack``; from
the nonces and the ephemeral ECDH secret both sides derive the AES secret of
the stream cipher and the MAC secret plus the initial states of the two
running Keccak-256 MACs (one per direction). Then every devp2p message is one
*frame*::

    header (16, AES-CTR) | header MAC (16) | frame (AES-CTR, padded to 16) | frame MAC (16)

The header holds the 24-bit frame size and geth's constant header data
``zeroHeader``; the MACs are the running Keccak states reseeded through
AES-ECB with the MAC secret (:func:`update_mac`). Message payloads are
snappy-compressed once both sides speak devp2p version 5.

Everything here follows rlpx.go in order and naming. Python differences:

* Go's ``io.ReadWriter`` becomes any object with ``read``/``write`` (a pipe,
  a FIFO buffer) or a socket. A socket is wrapped in :class:`_SocketConn`,
  which reads with ``recv_into`` into one reusable buffer and implements
  geth's read/write deadlines with ``poll`` on a non-blocking socket.
* Errors are raised, not returned; :class:`RLPxError` is the base of the
  errors this module creates, and a disconnect reason received instead of the
  protocol handshake is raised as :class:`~p2p.peer_error.DiscReasonError`.
* The frame reader/writer keeps the AES-CTR contexts open for the whole
  connection, passes :func:`update_mac` the MAC digest it already has (Go
  computes it again) and writes each frame with one call.
"""

from __future__ import annotations

import hmac
import io
import os
import queue
import random
import select
import socket
import threading
import time

import snappy
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from p2p import crypto, rlpcodec
from p2p.crypto import ecies
from p2p.discover.node import NodeID
from p2p.log import TRACE, get_logger
from p2p.message import Msg, MsgReadWriter, send, send_items
from p2p.netutil import addr_str
from p2p.peer import ProtoHandshake, baseProtocolMaxMsgSize, discMsg, handshakeMsg, snappyProtocolVersion
from p2p.peer_error import DiscInvalidIdentity, DiscNetworkError, DiscReason, DiscReasonError, decode_disc_reason
from p2p.rlpcodec import encode_bytes, encode_list, encode_uint
from p2p.server import frameReadTimeout, frameWriteTimeout  # server.go's, used by rlpx.go

log = get_logger("p2p.rlpx")

maxUint24 = 0xFFFFFF

sskLen = 16  # ecies.max_shared_key_length(pub) / 2
sigLen = 65  # secp256k1 recoverable signature
pubLen = 64  # public key without the 0x04 format byte
shaLen = 32  # nonce and hash length

authMsgLen = sigLen + shaLen + pubLen + shaLen + 1
authRespLen = pubLen + shaLen + 1

eciesOverhead = 65 + 16 + 32  # ephemeral pubkey, IV, MAC

encAuthMsgLen = authMsgLen + eciesOverhead  # pre-EIP-8 encrypted auth size
encAuthRespLen = authRespLen + eciesOverhead  # pre-EIP-8 encrypted ack size

# Total time allowed for both handshakes, in both directions (seconds).
handshakeTimeout = 5.0
# Time allowed for sending the disconnect reason on close: short, because
# the connection is probably bad already.
discWriteTimeout = 1.0

# The largest frame that can hold a hello or a disconnect (both have one-byte codes):
# bigger ones are refused from the header, before the node reads their body.
maxHelloFrameSize = baseProtocolMaxMsgSize + 1


class RLPxError(Exception):
    """An error of the RLPx transport (bad handshake, bad MAC, bad frame, ...)."""


class HandshakeError(RLPxError):
    """The encryption handshake failed (undecryptable or malformed auth/ack)."""


class ProtocolHandshakeError(RLPxError):
    """The devp2p hello could not be read (wrong message, too big, ...)."""


class BadMACError(RLPxError):
    """A frame header or frame body failed MAC verification."""


class PlainMessageTooLargeError(RLPxError):
    """A (decompressed) message would be 16 MiB or more."""


errPlainMessageTooLarge = PlainMessageTooLargeError("message length >= 16MB")


# ---------------------------------------------------------------------------
# Byte stream adapters (Python-only: Go's net.Conn and io.ReadWriter in one interface)


class _SocketConn:
    """A socket seen as a byte stream with exact reads and geth-style deadlines.

    Reads go through one reusable buffer filled with ``recv_into`` (so small
    frames cost one system call); :meth:`read_exact` returns a memoryview that
    stays valid until the next read. The socket is put in non-blocking mode and
    every call is tried first: only one that would block waits, with ``poll``,
    up to its deadline (absolute ``time.monotonic`` values). So a read or a
    write that the kernel can serve costs one system call, and the reading and
    the writing thread keep their own deadlines.
    """

    # The reusable read buffer starts small and doubles, up to BUF_SIZE, only once
    # the bytes that need the room have arrived: a fresh connection costs 4 KiB.
    INITIAL_BUF_SIZE = 1 << 12
    BUF_SIZE = 1 << 17

    def __init__(self, sock):
        self.sock = sock
        sock.setblocking(False)
        self._buf = bytearray(self.INITIAL_BUF_SIZE)
        self._mv = memoryview(self._buf)
        self._r = 0  # start of unread data
        self._w = 0  # end of unread data
        self.read_deadline = None
        self.write_deadline = None
        self._pollers = {}  # select.POLLIN / POLLOUT -> poll object, made on first wait
        # The server's compute slots (enter/leave) while a handshake runs on this socket:
        # a thread that holds one gives it back for every wait (see RLPx.set_wait_gate).
        self.wait_gate = None

    def set_deadline(self, t):
        self.read_deadline = self.write_deadline = t
        return True

    def set_read_deadline(self, t):
        self.read_deadline = t
        return True

    def set_write_deadline(self, t):
        self.write_deadline = t
        return True

    def _wait(self, event, deadline, what: str) -> None:
        """Wait until the socket is ready for ``event`` or the deadline passes."""
        p = self._pollers.get(event)
        if p is None:
            p = self._pollers[event] = select.poll()
            p.register(self.sock, event)
        gate = self.wait_gate
        held = gate is not None and gate.leave()
        try:
            if deadline is None:
                p.poll()
                return
            left = deadline - time.monotonic()
            if left <= 0 or not p.poll(left * 1000.0):
                raise socket.timeout("rlpx: %s deadline exceeded" % what)
        finally:
            if held:
                gate.enter()

    def _recv_into(self, mv) -> int:
        while True:
            try:
                return self.sock.recv_into(mv)
            except (BlockingIOError, InterruptedError):
                self._wait(select.POLLIN, self.read_deadline, "read")

    def read_exact(self, n: int):
        r = self._r
        if self._w - r >= n:
            self._r = r + n
            return self._mv[r:r + n]
        return self._fill(n)

    def _fill(self, n: int):
        if n > len(self._buf):
            out = self._read_growing(n)
            if len(self._buf) < self.BUF_SIZE:  # n bytes came: room for the next one
                self._resize(min(self.BUF_SIZE, 1 << (n - 1).bit_length()))
            return out
        if self._r + n > len(self._buf):
            # Move the unread tail to the front to make room.
            avail = self._w - self._r
            self._mv[:avail] = bytes(self._mv[self._r:self._w])
            self._r, self._w = 0, avail
        while self._w - self._r < n:
            free = len(self._buf) - self._w
            k = self._recv_into(self._mv[self._w:])
            if k == 0:
                raise EOFError("unexpected EOF" if self._w > self._r else "EOF")
            self._w += k
            if k == free and len(self._buf) < self.BUF_SIZE:
                self._resize(2 * len(self._buf))  # the buffer filled up: more is waiting
        r = self._r
        self._r = r + n
        return self._mv[r:r + n]

    def _resize(self, size: int) -> None:
        """A fresh buffer of ``size`` bytes holding the unread data at its front.

        Views returned earlier keep the old buffer alive, so they stay valid.
        """
        avail = self._w - self._r
        buf = bytearray(size)
        buf[:avail] = self._mv[self._r:self._w]
        self._buf, self._mv = buf, memoryview(buf)
        self._r, self._w = 0, avail

    def _read_growing(self, n: int):
        """``n`` bytes, more than the buffer holds, in chunks allocated as they arrive.

        The first chunk is at most 64 KiB and each further one at most what has
        arrived so far, so a frame size claim costs no more memory than the bytes
        sent to back it (about twice those bytes while the frame is joined).
        """
        # departure: frame-read-grows: a frame is read into memory as its bytes arrive, not allocated at its claimed size first
        got = self._w - self._r
        chunks = [bytes(self._mv[self._r:self._w])]
        self._r = self._w = 0
        while got < n:
            chunk = bytearray(min(n - got, max(got, 1 << 16)))
            cmv = memoryview(chunk)
            cgot = 0
            while cgot < len(chunk):
                k = self._recv_into(cmv[cgot:])
                if k == 0:
                    raise EOFError("unexpected EOF")
                cgot += k
            chunks.append(chunk)
            got += cgot
        return memoryview(b"".join(chunks))

    def send_nowait(self, data) -> int:
        """Send what the socket takes now, without waiting; returns the bytes sent."""
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    def write(self, data) -> None:
        sent = self.send_nowait(data)
        if sent == len(data):
            return
        mv = memoryview(data)
        while sent < len(mv):
            self._wait(select.POLLOUT, self.write_deadline, "write")
            sent += self.send_nowait(mv[sent:])

    def close(self) -> None:
        # shutdown wakes a thread blocked in recv on this socket; close alone may not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class _StreamConn:
    """Any object with ``read(n)``/``write(b)`` (a pipe, a FIFO buffer, a file)."""

    def __init__(self, stream):
        self.stream = stream

    def _delegate(self, name, t):
        f = getattr(self.stream, name, None)
        if f is None:
            return False  # no deadlines on this stream (like net.Pipe in geth)
        f(t)
        return True

    def set_deadline(self, t):
        return self._delegate("set_deadline", t)

    def set_read_deadline(self, t):
        return self._delegate("set_read_deadline", t)

    def set_write_deadline(self, t):
        return self._delegate("set_write_deadline", t)

    def read_exact(self, n: int):
        data = self.stream.read(n)
        if data is not None and len(data) == n:
            return data
        return _read_full_stream(self.stream, n, data)

    def write(self, data) -> None:
        k = self.stream.write(data)
        if k is not None and k < len(data):
            _write_all_stream(self.stream, memoryview(data)[k:])

    def close(self) -> None:
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()


def _read_full_stream(stream, n: int, data=None) -> bytes:
    if data is None:
        data = stream.read(n)
    if data is not None and len(data) == n:
        return data
    parts = [data] if data else []
    got = len(data) if data else 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise EOFError("unexpected EOF" if got else "EOF")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _write_all_stream(stream, data) -> None:
    mv = memoryview(data)
    while len(mv):
        k = stream.write(mv)
        if k is None or k >= len(mv):
            return
        mv = mv[k:]


def _is_socket(c) -> bool:
    return hasattr(c, "recv_into") and hasattr(c, "sendall")


def _wrap_conn(c):
    """The byte-stream adapter for ``c`` (a socket, a stream, or an adapter already)."""
    if isinstance(c, (_SocketConn, _StreamConn)):
        return c
    if _is_socket(c):
        return _SocketConn(c)
    return _StreamConn(c)


def _read_full(r, n: int) -> bytes:
    """Exactly ``n`` bytes from an adapter or a stream (Go's io.ReadFull)."""
    if isinstance(r, (_SocketConn, _StreamConn)):
        return bytes(r.read_exact(n))
    return _read_full_stream(r, n)


def _write_all(w, data) -> None:
    if isinstance(w, (_SocketConn, _StreamConn)):
        w.write(data)
    else:
        _write_all_stream(w, data)


# ---------------------------------------------------------------------------
# The transport


def new_rlpx(fd, **timeouts) -> "RLPx":
    """The RLPx transport over connected socket ``fd`` (handshake deadline starts now)."""
    return RLPx(fd, **timeouts)


class RLPx(MsgReadWriter):
    """The transport of real connections: the frame reader/writer plus locks and deadlines.

    ``fd`` is a connected socket (or any byte stream). The timeouts default to
    geth's; tests pass short ones.
    """

    def __init__(self, fd, handshake_timeout: float = handshakeTimeout,
                 frame_read_timeout: float = frameReadTimeout,
                 frame_write_timeout: float = frameWriteTimeout,
                 disc_write_timeout: float = discWriteTimeout):
        self.fd = fd
        self.conn = _wrap_conn(fd)
        self.rmu = threading.Lock()
        self.wmu = threading.Lock()
        self.rw: "RLPXFrameRW | None" = None
        self.frame_read_timeout = frame_read_timeout
        self.frame_write_timeout = frame_write_timeout
        self.disc_write_timeout = disc_write_timeout
        self.conn.set_deadline(time.monotonic() + handshake_timeout)

    def set_wait_gate(self, gate) -> None:
        """Give ``gate`` (the server's compute slots, or None) back around every network wait.

        Python-only (departure handshake-compute-slots in p2p/server.py): a thread that
        holds one of ``gate``'s slots calls ``gate.leave()`` before it waits for the socket
        and ``gate.enter()`` once the wait is over; other threads are not affected.
        """
        if isinstance(self.conn, _SocketConn):
            self.conn.wait_gate = gate

    def read_msg(self) -> Msg:
        with self.rmu:
            if self.rw is None:
                raise RLPxError("rlpx: read before the encryption handshake")
            self.conn.set_read_deadline(time.monotonic() + self.frame_read_timeout)
            return self.rw.read_msg()

    def write_msg(self, msg: Msg) -> None:
        with self.wmu:
            if self.rw is None:
                raise RLPxError("rlpx: write before the encryption handshake")
            self.conn.set_write_deadline(time.monotonic() + self.frame_write_timeout)
            self.rw.write_msg(msg)

    def close(self, err=None) -> None:
        """Tell the remote side why (if ``err`` is a disconnect reason), then close.

        Unlike geth, which waits for a pending write, the lock is awaited only
        for the disconnect write timeout; after that the socket is closed
        anyway, which also fails the stuck write.
        """
        # departure: rlpx-close-bounded: close waits for a pending write only as long as the disconnect write may take
        locked = self.wmu.acquire(timeout=self.disc_write_timeout)
        try:
            if locked and self.rw is not None:
                reason = _reason_of(err)
                if reason is not None and reason != DiscNetworkError:
                    # Streams without deadlines (in-memory pipes) could block
                    # forever on a dead peer; geth skips the write then, so do we.
                    if self.conn.set_write_deadline(time.monotonic() + self.disc_write_timeout):
                        try:
                            send_items(self.rw, discMsg, int(reason))
                        except Exception as e:  # the peer may be gone already
                            log.trace("Failed to send disconnect reason", reason=reason, err=e)
            self.conn.close()
        finally:
            if locked:
                self.wmu.release()

    def do_proto_handshake(self, our):
        """Exchange devp2p hello messages; returns the remote ProtoHandshake.

        Our hello is written while the remote one is read, as geth does, so two
        peers with full send buffers cannot deadlock (see :meth:`_go_send_hello`).
        A read error wins over a write error: a peer that disconnects us with a
        reason reports that reason.
        """
        werr = self._go_send_hello(our)
        # departure: hello-frame-limit: a frame bigger than the largest hello is refused before its bytes are read
        self.rw.max_frame_size = maxHelloFrameSize
        try:
            their = read_protocol_handshake(self.rw, our)
            if log.is_enabled_for(TRACE):
                log.trace("<< devp2p hello", addr=addr_str(self.conn), name=their.name,
                          version=their.version, caps=",".join(str(c) for c in their.caps))
        except BaseException:
            werr.get()  # make sure the write terminates too
            raise
        e = werr.get()
        if e is not None:
            raise RLPxError("write error: %s" % e) from e
        self.rw.max_frame_size = maxUint24
        # Both sides compress from here on if the remote speaks version 5.
        self.rw.snappy = their.version >= snappyProtocolVersion
        return their

    def _go_send_hello(self, our):
        """Start writing our hello; returns what its result (None or the error) comes from (``get``).

        Python-only: stands for geth's ``go func() { werr <- Send(...) }()``. A thread
        costs far more than a goroutine, and a fresh socket's send buffer always takes
        a hello, so the frame is offered to the socket without waiting first; only
        what it does not take now is left to a thread (``p2p.rlpx.doProtoHandshake``).
        """
        rw, conn = self.rw, self.conn
        assert rw is not None, "hello before the encryption handshake"
        frame = _Written()
        try:
            rw.conn = frame  # the encrypted frame, not yet written
            try:
                send(rw, handshakeMsg, our)
            finally:
                rw.conn = conn
            data = frame.data
            sent = conn.send_nowait(data) if isinstance(conn, _SocketConn) else 0
        except Exception as e:  # handed to the reading side, like the write's own errors
            return _Result(e)
        if sent == len(data):
            self._hello_written(our)
            return _Result(None)
        werr: queue.Queue = queue.Queue(maxsize=1)

        def write():
            try:
                conn.write(memoryview(data)[sent:])
                self._hello_written(our)
                werr.put(None)
            except BaseException as e:  # handed to the reading side
                werr.put(e)

        threading.Thread(target=write, name="p2p.rlpx.doProtoHandshake", daemon=True).start()
        return werr

    def _hello_written(self, our) -> None:
        if log.is_enabled_for(TRACE):
            log.trace(">> devp2p hello", addr=addr_str(self.conn), name=our.name, version=our.version)


    def do_enc_handshake(self, prv, dial):
        """Run the encryption handshake; ``dial`` is the remote Node when we dialed, else None.

        Returns the remote NodeID. The protocol handshake that follows is the
        first authenticated message and proves the remote key.
        """
        if dial is None:
            sec = receiver_enc_handshake(self.conn, prv)
        else:
            sec = initiator_enc_handshake(self.conn, prv, dial.id)
        with self.wmu:
            self.rw = new_rlpx_frame_rw(self.conn, sec)
        if log.is_enabled_for(TRACE):
            log.trace("RLPx secrets derived", addr=addr_str(self.conn), id=sec.remote_id.hex()[:16],
                      initiator=dial is not None)
        return sec.remote_id


class _Result:
    """A result known at once, read like the queue a hello writer thread answers on
    (Python-only: saves RLPx._go_send_hello a Queue when the socket took the hello)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


class _Written:
    """Keeps the frame a frame writer writes (Python-only, for RLPx._go_send_hello)."""

    __slots__ = ("data",)

    def write(self, data) -> None:
        self.data = data


def _reason_of(err):
    if isinstance(err, DiscReasonError):
        return err.reason
    if isinstance(err, DiscReason):
        return err
    return None


def read_protocol_handshake(rw, our):
    """Read the remote hello from ``rw``; a disconnect instead raises DiscReasonError."""
    msg = rw.read_msg()
    if msg.size > baseProtocolMaxMsgSize:
        raise ProtocolHandshakeError("message too big")
    if msg.code == discMsg:
        # A disconnect before the hello is valid; we send one ourselves when the
        # post-handshake checks fail. The reason is raised, wrapped in an error.
        raise DiscReasonError(decode_disc_reason(msg.payload.read(msg.size)))
    if msg.code != handshakeMsg:
        raise ProtocolHandshakeError("expected handshake, got %x" % msg.code)
    hs = msg.decode(ProtoHandshake)
    if not any(hs.id):
        raise DiscReasonError(DiscInvalidIdentity)
    return hs


# ---------------------------------------------------------------------------
# The encryption handshake


class EncHandshake:
    """State of one encryption handshake (geth's encHandshake)."""

    __slots__ = ("initiator", "remote_id", "remote_pub", "init_nonce", "resp_nonce",
                 "random_priv_key", "remote_random_pub")

    def __init__(self, initiator: bool = False, remote_id=None, remote_pub=None, init_nonce=None,
                 resp_nonce=None, random_priv_key=None, remote_random_pub=None):
        self.initiator = initiator
        self.remote_id = remote_id
        self.remote_pub = remote_pub  # remote static public key
        self.init_nonce = init_nonce
        self.resp_nonce = resp_nonce
        self.random_priv_key = random_priv_key  # our ephemeral ECDH key
        self.remote_random_pub = remote_random_pub  # the remote ephemeral key

    def secrets(self, auth: bytes, auth_resp: bytes) -> "Secrets":
        """Derive the connection secrets once both handshake packets are known."""
        ecdhe_secret = ecies.generate_shared(self.random_priv_key, self.remote_random_pub, sskLen, sskLen)

        # Base secrets from the ephemeral key agreement.
        shared_secret = crypto.keccak256(ecdhe_secret, crypto.keccak256(self.resp_nonce, self.init_nonce))
        aes_secret = crypto.keccak256(ecdhe_secret, shared_secret)
        s = Secrets(
            remote_id=self.remote_id,
            aes=aes_secret,
            mac=crypto.keccak256(ecdhe_secret, aes_secret),
        )

        # The running MAC states.
        mac1 = crypto.new_keccak256()
        mac1.update(xor(s.mac, self.resp_nonce))
        mac1.update(auth)
        mac2 = crypto.new_keccak256()
        mac2.update(xor(s.mac, self.init_nonce))
        mac2.update(auth_resp)
        if self.initiator:
            s.egress_mac, s.ingress_mac = mac1, mac2
        else:
            s.egress_mac, s.ingress_mac = mac2, mac1
        return s

    def static_shared_secret(self, prv) -> bytes:
        """ECDH of our static key with the remote static key."""
        return ecies.generate_shared(prv, self.remote_pub, sskLen, sskLen)

    def make_auth_msg(self, prv) -> "AuthMsgV4":
        """Build the initiator's auth message."""
        try:
            rpub = NodeID(bytes(self.remote_id)).pubkey()
        except (ValueError, TypeError) as e:
            raise HandshakeError("bad remoteID: %s" % e) from None
        self.remote_pub = ecies.import_ecdsa_public(rpub)
        self.init_nonce = os.urandom(shaLen)
        self.random_priv_key = ecies.generate_key()

        # Sign the known message static-shared-secret ^ nonce with the ephemeral key.
        token = self.static_shared_secret(prv)
        signed = xor(token, self.init_nonce)
        signature = crypto.sign(signed, self.random_priv_key)

        return AuthMsgV4(
            signature=signature,
            initiator_pubkey=prv.public_key.raw,
            nonce=self.init_nonce,
            version=4,
        )

    def handle_auth_resp(self, msg: "AuthRespV4") -> None:
        self.resp_nonce = msg.nonce
        self.remote_random_pub = import_public_key(msg.random_pubkey)

    def handle_auth_msg(self, msg: "AuthMsgV4", prv) -> None:
        """Take in the initiator's auth: its identity, nonce and ephemeral key."""
        self.init_nonce = msg.nonce
        self.remote_id = NodeID(msg.initiator_pubkey)
        try:
            rpub = self.remote_id.pubkey()
        except ValueError as e:
            raise HandshakeError("bad remoteID: %s" % e) from None
        self.remote_pub = ecies.import_ecdsa_public(rpub)

        # Our ephemeral key, unless one was set already (the test vectors do).
        if self.random_priv_key is None:
            self.random_priv_key = ecies.generate_key()

        # The signature recovers the initiator's ephemeral public key.
        token = self.static_shared_secret(prv)
        signed_msg = xor(token, self.init_nonce)
        try:
            remote_random_pub = crypto.recover_node_id(signed_msg, msg.signature)
        except crypto.CryptoError as e:
            raise HandshakeError("invalid auth signature: %s" % e) from None
        self.remote_random_pub = import_public_key(remote_random_pub)

    def make_auth_resp(self) -> "AuthRespV4":
        """Build the receiver's ack message."""
        self.resp_nonce = os.urandom(shaLen)
        return AuthRespV4(
            random_pubkey=export_pubkey(self.random_priv_key.public_key),
            nonce=self.resp_nonce,
            version=4,
        )


class Secrets:
    """The secrets of one connection, negotiated by the encryption handshake."""

    __slots__ = ("remote_id", "aes", "mac", "egress_mac", "ingress_mac", "token")

    def __init__(self, remote_id=None, aes=b"", mac=b"", egress_mac=None, ingress_mac=None, token=b""):
        self.remote_id = remote_id
        self.aes = aes
        self.mac = mac
        self.egress_mac = egress_mac  # running Keccak-256 state (update/digest/copy)
        self.ingress_mac = ingress_mac
        self.token = token


def initiator_enc_handshake(conn, prv, remote_id) -> Secrets:
    """Run the dialing side of the encryption handshake on ``conn``; ``prv`` is our key."""
    h = EncHandshake(initiator=True, remote_id=remote_id)
    auth_msg = h.make_auth_msg(prv)
    auth_packet = seal_eip8(auth_msg, h)
    _write_all(conn, auth_packet)
    if log.is_enabled_for(TRACE):
        log.trace(">> RLPx auth (EIP-8)", addr=addr_str(conn), size=len(auth_packet))

    auth_resp_msg = AuthRespV4()
    auth_resp_packet = read_handshake_msg(auth_resp_msg, encAuthRespLen, prv, conn)
    if log.is_enabled_for(TRACE):
        log.trace("<< RLPx ack", addr=addr_str(conn), size=len(auth_resp_packet),
                  format="plain" if len(auth_resp_packet) == encAuthRespLen else "EIP-8")
    h.handle_auth_resp(auth_resp_msg)
    return h.secrets(auth_packet, auth_resp_packet)


def receiver_enc_handshake(conn, prv) -> Secrets:
    """Run the listening side of the encryption handshake on ``conn``; ``prv`` is our key.

    The ack is sent in the format the auth came in (pre-EIP-8 or EIP-8).
    """
    auth_msg = AuthMsgV4()
    auth_packet = read_handshake_msg(auth_msg, encAuthMsgLen, prv, conn)
    if log.is_enabled_for(TRACE):
        log.trace("<< RLPx auth", addr=addr_str(conn), size=len(auth_packet),
                  format="plain" if auth_msg.got_plain else "EIP-8")
    h = EncHandshake()
    h.handle_auth_msg(auth_msg, prv)

    auth_resp_msg = h.make_auth_resp()
    if auth_msg.got_plain:
        auth_resp_packet = auth_resp_msg.seal_plain(h)
    else:
        auth_resp_packet = seal_eip8(auth_resp_msg, h)
    _write_all(conn, auth_resp_packet)
    if log.is_enabled_for(TRACE):
        log.trace(">> RLPx ack", addr=addr_str(conn), size=len(auth_resp_packet),
                  format="plain" if auth_msg.got_plain else "EIP-8")
    return h.secrets(auth_packet, auth_resp_packet)


# The handshake bodies are read and written by p2p.rlpcodec (raw tail items kept byte-exact).
def _rlp_decode_fields(data, nfixed: int, typ: str):
    """Split the leading RLP list of ``data`` (trailing bytes ignored).

    Returns the first ``nfixed`` fields (strings; the last one decoded as an
    unsigned integer) and the raw encodings of any further elements.
    """
    try:
        top = rlpcodec.head(data, 0, len(data))
        if top[0] != rlpcodec.LIST:
            raise rlpcodec.DecodeError("rlp: expected input list")
        items = rlpcodec.split(data, top[2], top[3])
        if len(items) < nfixed:
            raise rlpcodec.DecodeError("rlp: too few elements")
        fields = [bytes(rlpcodec.string(it, data)) for it in items[:nfixed - 1]]
        fields.append(rlpcodec.uint(items[nfixed - 1], data, 8))
    except rlpcodec.DecodeError as e:
        raise HandshakeError("%s for p2p.%s" % (e, typ)) from None
    return fields, [bytes(rlpcodec.raw(it, data)) for it in items[nfixed:]]


def _fixed(b, n: int, what: str) -> bytes:
    b = bytes(b)
    if len(b) != n:
        raise HandshakeError("rlp: input string %s for [%d]uint8 (%s)" % (
            "too short" if len(b) < n else "too long", n, what))
    return b


class AuthMsgV4:
    """The RLPx v4 auth message (EIP-8 layout; ``rest`` keeps extra list elements raw)."""

    __slots__ = ("got_plain", "signature", "initiator_pubkey", "nonce", "version", "rest")

    def __init__(self, signature=bytes(sigLen), initiator_pubkey=bytes(pubLen), nonce=bytes(shaLen),
                 version: int = 0, rest=None, got_plain: bool = False):
        self.got_plain = got_plain  # whether the packet came in the pre-EIP-8 format
        self.signature = bytes(signature)
        self.initiator_pubkey = bytes(initiator_pubkey)
        self.nonce = bytes(nonce)
        self.version = version
        self.rest = rest  # None, or a list of raw RLP items (forward compatibility)

    def __eq__(self, other):
        return isinstance(other, AuthMsgV4) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return "AuthMsgV4(version=%d, plain=%s, pubkey=%s..., rest=%r)" % (
            self.version, self.got_plain, self.initiator_pubkey[:8].hex(), self.rest)

    def seal_plain(self, h: EncHandshake) -> bytes:
        """The pre-EIP-8 encrypted form."""
        buf = b"".join((
            self.signature,
            crypto.keccak256(export_pubkey(h.random_priv_key.public_key)),
            self.initiator_pubkey,
            self.nonce,
            b"\x00",  # token flag
        ))
        return ecies.encrypt(h.remote_pub, buf)

    def decode_plain(self, data) -> None:
        n = sigLen
        self.signature = bytes(data[:n])
        n += shaLen  # skip keccak256(initiator ephemeral pubkey)
        self.initiator_pubkey = bytes(data[n:n + pubLen])
        n += pubLen
        self.nonce = bytes(data[n:n + shaLen])
        self.version = 4
        self.got_plain = True

    def encode_rlp(self) -> bytes:
        return encode_list([encode_bytes(self.signature), encode_bytes(self.initiator_pubkey),
                            encode_bytes(self.nonce), encode_uint(self.version)], self.rest)

    def decode_rlp(self, data) -> None:
        items, rest = _rlp_decode_fields(data, 4, "authMsgV4")
        self.signature = _fixed(items[0], sigLen, "Signature")
        self.initiator_pubkey = _fixed(items[1], pubLen, "InitiatorPubkey")
        self.nonce = _fixed(items[2], shaLen, "Nonce")
        self.version = items[3]
        self.rest = rest


class AuthRespV4:
    """The RLPx v4 ack message (EIP-8 layout; ``rest`` keeps extra list elements raw)."""

    __slots__ = ("random_pubkey", "nonce", "version", "rest")

    def __init__(self, random_pubkey=bytes(pubLen), nonce=bytes(shaLen), version: int = 0, rest=None):
        self.random_pubkey = bytes(random_pubkey)
        self.nonce = bytes(nonce)
        self.version = version
        self.rest = rest

    def __eq__(self, other):
        return isinstance(other, AuthRespV4) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return "AuthRespV4(version=%d, rest=%r)" % (self.version, self.rest)

    def seal_plain(self, hs: EncHandshake) -> bytes:
        """The pre-EIP-8 encrypted form (the final byte is the zero token flag)."""
        return ecies.encrypt(hs.remote_pub, self.random_pubkey + self.nonce + b"\x00")

    def decode_plain(self, data) -> None:
        self.random_pubkey = bytes(data[:pubLen])
        self.nonce = bytes(data[pubLen:pubLen + shaLen])
        self.version = 4

    def encode_rlp(self) -> bytes:
        return encode_list([encode_bytes(self.random_pubkey), encode_bytes(self.nonce),
                            encode_uint(self.version)], self.rest)

    def decode_rlp(self, data) -> None:
        items, rest = _rlp_decode_fields(data, 3, "authRespV4")
        self.random_pubkey = _fixed(items[0], pubLen, "RandomPubkey")
        self.nonce = _fixed(items[1], shaLen, "Nonce")
        self.version = items[2]
        self.rest = rest


_rand = random.Random()


def seal_eip8(msg, h: EncHandshake) -> bytes:
    """The EIP-8 form: size prefix, then ECIES of RLP plus 100..299 bytes of padding.

    The padding makes the packet longer than any pre-EIP-8 one, so a receiver
    can tell the formats apart; the size prefix is authenticated by the ECIES MAC.
    """
    body = msg.encode_rlp()
    pad = bytes(_rand.randrange(100, 300))
    size = len(body) + len(pad) + eciesOverhead
    prefix = size.to_bytes(2, "big")
    enc = ecies.encrypt(h.remote_pub, body + pad, None, prefix)
    return prefix + enc


def read_handshake_msg(msg, plain_size: int, prv, r) -> bytes:
    """Read one auth or ack packet from ``r`` into ``msg``; returns the packet bytes.

    The pre-EIP-8 format (exactly ``plain_size`` bytes) is tried first, then
    EIP-8 (two size bytes, then that many). Higher versions and extra list
    elements are accepted (forward compatibility).
    """
    buf = _read_full(r, plain_size)
    # Pre-EIP-8 "plain" format? (Cheap to rule out: it starts with 0x04.)
    if buf[0] == 0x04:
        try:
            dec = ecies.decrypt(prv, buf)
        except ecies.ECIESError:
            pass
        else:
            msg.decode_plain(dec)
            return buf
    # EIP-8 format.
    prefix = buf[:2]
    size = int.from_bytes(prefix, "big")
    if size < plain_size:
        raise HandshakeError("size underflow, need at least %d bytes" % plain_size)
    buf += _read_full(r, size - plain_size + 2)
    try:
        dec = ecies.decrypt(prv, memoryview(buf)[2:], None, prefix)
    except ecies.ECIESError as e:
        raise HandshakeError("could not decrypt handshake message: %s" % e) from None
    # Trailing data after the RLP list (the padding) is fine.
    msg.decode_rlp(dec)
    return buf


def import_public_key(pub_key) -> ecies.PublicKey:
    """An ECIES public key from 64 (X||Y) or 65 (0x04||X||Y) bytes."""
    n = len(pub_key)
    if n == 64:
        pub65 = b"\x04" + bytes(pub_key)
    elif n == 65:
        pub65 = bytes(pub_key)
    else:
        raise HandshakeError("invalid public key length %d (expect 64/65)" % n)
    try:
        pub = crypto.unmarshal_pubkey(pub65)
    except crypto.CryptoError as e:
        raise HandshakeError(str(e)) from None
    return ecies.import_ecdsa_public(pub)


def export_pubkey(pub) -> bytes:
    """The 64-byte X||Y encoding of a public key."""
    if pub is None:
        raise ValueError("nil pubkey")
    return pub.raw


def xor(one, other) -> bytes:
    """Byte-wise XOR of ``one`` with the first ``len(one)`` bytes of ``other``."""
    n = len(one)
    return (int.from_bytes(one, "big") ^ int.from_bytes(other[:n], "big")).to_bytes(n, "big")


# ---------------------------------------------------------------------------
# Framing

# Header data geth writes in every frame (RLP [0, 0]: capability-id 0, context-id 0).
zeroHeader = b"\xc2\x80\x80"
zero16 = bytes(16)


def new_rlpx_frame_rw(conn, s: Secrets) -> "RLPXFrameRW":
    return RLPXFrameRW(conn, s)


class RLPXFrameRW(MsgReadWriter):
    """RLPx framing of whole messages, over any byte stream.

    One message per frame (no chunking) and every header carries
    ``zeroHeader``, like geth. Not safe for concurrent use by several readers
    or several writers (the RLPx transport holds the locks); one reader and
    one writer may run at the same time.
    """

    def __init__(self, conn, s: Secrets):
        self.conn = _wrap_conn(conn)
        try:
            mac_alg = algorithms.AES(bytes(s.mac))
            enc_alg = algorithms.AES(bytes(s.aes))
        except ValueError as e:
            raise ValueError("invalid RLPx secret: %s" % e) from None
        # All-zero IV: the key is ephemeral. One CTR context per direction for the
        # whole connection (geth's cipher.Stream).
        ctr = Cipher(enc_alg, modes.CTR(bytes(16)))
        self.enc = ctr.encryptor()
        self.dec = ctr.decryptor()
        self.mac_cipher = Cipher(mac_alg, modes.ECB()).encryptor()
        self.egress_mac = s.egress_mac
        self.ingress_mac = s.ingress_mac
        self.snappy = False
        # Python-only: each MAC's digest as of its last update_mac, handed back to
        # update_mac so that it need not finalize the Keccak state again.
        self._egress_sum = s.egress_mac.digest()
        self._ingress_sum = s.ingress_mac.digest()
        # Largest frame read_msg accepts (the transport lowers it until the hello is in).
        self.max_frame_size = maxUint24

    def write_msg(self, msg: Msg) -> None:
        ptype = _encode_code(msg.code)

        # if snappy is enabled, compress the message now
        size = msg.size
        if self.snappy:
            if size > maxUint24:
                raise errPlainMessageTooLarge
            payload = snappy.compress(_read_payload(msg, size))
            size = len(payload)

        # write the header
        fsize = len(ptype) + size
        if fsize > maxUint24:
            raise RLPxError("message size overflows uint24")
        if not self.snappy:
            payload = _read_payload(msg, size)
        headbuf = self.enc.update(fsize.to_bytes(3, "big") + zeroHeader + zero16[:10])

        # write the header MAC
        header_mac = update_mac(self.egress_mac, self.mac_cipher, headbuf, self._egress_sum)

        # write the encrypted frame, updating the egress MAC with the ciphertext
        padding = fsize % 16
        frame = self.enc.update(ptype + payload + zero16[:16 - padding] if padding else ptype + payload)
        self.egress_mac.update(frame)

        # write the frame MAC: the egress MAC is up to date with the frame
        fmacseed = self.egress_mac.digest()
        mac = self._egress_sum = update_mac(self.egress_mac, self.mac_cipher, fmacseed, fmacseed)
        # One write for the whole frame: one system call, where Go makes four.
        self.conn.write(b"".join((headbuf, header_mac, frame, mac)))

    def read_msg(self) -> Msg:
        # read the header
        headbuf = self.conn.read_exact(32)

        # verify the header MAC
        should_mac = update_mac(self.ingress_mac, self.mac_cipher, headbuf[:16], self._ingress_sum)
        if not hmac.compare_digest(should_mac, headbuf[16:]):
            raise BadMACError("bad header MAC")
        fsize = read_int24(self.dec.update(headbuf[:16]))
        # ignore the protocol type for now
        if fsize > self.max_frame_size:
            raise RLPxError("rlpx: frame of %d bytes over the limit of %d" % (fsize, self.max_frame_size))

        # read the frame content and its MAC (one read)
        rsize = fsize  # frame size rounded up to 16 bytes
        padding = fsize % 16
        if padding:
            rsize += 16 - padding
        framebuf = self.conn.read_exact(rsize + 16)

        # validate the frame MAC
        self.ingress_mac.update(framebuf[:rsize])
        fmacseed = self.ingress_mac.digest()
        should_mac = self._ingress_sum = update_mac(self.ingress_mac, self.mac_cipher, fmacseed, fmacseed)
        if not hmac.compare_digest(should_mac, framebuf[rsize:]):
            raise BadMACError("bad frame MAC")

        # decrypt the frame content
        content = self.dec.update(framebuf[:rsize])

        # decode the message code
        try:
            code, n = rlpcodec.uint_prefix(content, fsize)
        except rlpcodec.DecodeError as e:
            raise RLPxError("%s (message code)" % e) from None
        payload, size = content[n:fsize], fsize - n

        # if snappy is enabled, verify and decompress the message
        if self.snappy:
            payload, size = _snappy_decode(payload, code)
        return Msg(code, size, io.BytesIO(payload))


def _encode_code(code: int) -> bytes:
    """The RLP encoding of a message code (``rlp.EncodeToBytes(msg.Code)`` in Go)."""
    if 0 <= code < 1 << 64:
        return encode_uint(code)
    raise RLPxError("message code %d out of uint64 range" % code)


def _read_payload(msg: Msg, size: int) -> bytes:
    if size == 0:
        return b""
    data = msg.payload.read(size)
    if len(data) != size:
        raise RLPxError("message payload has %d bytes, size says %d" % (len(data), size))
    return data


def snappy_decoded_len(data) -> int:
    """The uncompressed length a snappy block declares (its leading varint).

    Reading it needs no allocation, so an absurd claim is refused before any
    decompression starts.
    """
    v = 0
    shift = 0
    for i in range(min(len(data), 10)):
        b = data[i]
        v |= (b & 0x7F) << shift
        if b < 0x80:
            if v > 0xFFFFFFFF:
                break
            return v
        shift += 7
    raise RLPxError("snappy: corrupt input")


def _snappy_decode(payload: bytes, code: int):
    try:
        size = snappy_decoded_len(payload)
    except RLPxError:
        if code == discMsg:
            return payload, len(payload)  # see below
        raise
    if size > maxUint24:
        raise errPlainMessageTooLarge
    try:
        out = snappy.uncompress(payload)
    except Exception as e:  # python-snappy raises UncompressError or others
        if code == discMsg:
            # Some clients send their disconnect uncompressed even after
            # negotiating snappy; take it as it is rather than failing.
            return payload, len(payload)
        raise RLPxError("snappy: corrupt input (%s)" % e) from None
    if len(out) != size:
        raise RLPxError("snappy: corrupt input (length mismatch)")
    return out, size


def update_mac(mac, block, seed, mac_sum=None) -> bytes:
    """Reseed the running MAC with its AES-ECB-encrypted digest XOR ``seed``.

    ``block`` is the AES-ECB encryptor of the MAC secret; returns the first 16
    bytes of the new digest. Python-only: ``mac_sum`` is the MAC's current
    digest if the caller has it (the frame reader/writer always does), which
    saves finalizing the Keccak state once more.
    """
    if mac_sum is None:
        mac_sum = mac.digest()
    aesbuf = block.update(mac_sum[:16])
    mac.update((int.from_bytes(aesbuf, "big") ^ int.from_bytes(seed[:16], "big")).to_bytes(16, "big"))
    return mac.digest()[:16]


def read_int24(b) -> int:
    return b[2] | (b[1] << 8) | (b[0] << 16)


def put_int24(v: int, b) -> None:
    b[0] = (v >> 16) & 0xFF
    b[1] = (v >> 8) & 0xFF
    b[2] = v & 0xFF
