"""JSON-RPC 2.0 for simulation nodes: a server, a client, in-process and WebSocket transports.

Only what geth's p2p/simulations use of its ``rpc`` package: a server holding
services under namespaces (``admin_addPeer`` calls method ``add_peer`` of the
service registered as ``admin``), publish/subscribe (``admin_subscribe`` with
``["peerEvents"]`` answers a subscription id, then ``admin_subscription``
notifications carry ``{"subscription": id, "result": ...}``, and
``admin_unsubscribe`` ends it), an in-process client (geth's ``DialInProc``)
and a WebSocket server and client (geth's ``NewWSServer``/``DialWebsocket``,
here on the ``websockets`` library's thread-based API).

Python method names are snake_case; their RPC names are geth's, the Go method
name with its first letter lowered (``node_info`` -> ``nodeInfo``).

Every connection is served by one thread reading requests in order; every
subscription's producer is a thread the connection joins when it closes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import json
import os
import queue
import threading
from typing import Any, Callable, Dict, Optional

from p2p.event import ErrQueue
from p2p.log import get_logger

log = get_logger("p2p.rpc")

# JSON-RPC 2.0 error codes (geth's rpc/errors.go).
parseErrorCode = -32700
invalidRequestCode = -32600
methodNotFoundCode = -32601
invalidParamsCode = -32602
callbackErrorCode = -32000

# Largest request or response message accepted, in bytes (geth's maxRequestContentLength).
maxRequestContentLength = 1024 * 128
# Python-only bound: each subscription costs threads, so one connection may hold this many.
maxSubscriptionsPerConn = 100

subscribeMethodSuffix = "_subscribe"
unsubscribeMethodSuffix = "_unsubscribe"
notificationMethodSuffix = "_subscription"

# How long a client waits for an answer by default.
defaultCallTimeout = 30.0


class RPCError(Exception):
    """An error answer: its JSON-RPC code and message."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict:
        d = {"code": self.code, "message": self.message}
        if self.data is not None:
            d["data"] = self.data
        return d


class ClientQuitError(Exception):
    """The client was closed, or its connection was lost."""


errClientQuit = ClientQuitError("client is closed")
ErrNotificationsUnsupported = RPCError(methodNotFoundCode, "notifications not supported")
ErrSubscriptionNotFound = RPCError(callbackErrorCode, "subscription not found")


def subscription(method):
    """Mark a service method as a subscription: it is called as ``method(notifier, *args)``."""
    method.rpc_subscription = True
    return method


def rpc_name(python_name: str) -> str:
    """RPC name of a Python method: ``node_info`` -> ``nodeInfo`` (geth's lowered Go name)."""
    head, *rest = python_name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def to_json_value(v):
    """A value as geth's JSON encoding would give it: objects through ``to_json``/``to_dict``."""
    if hasattr(v, "to_json"):
        return to_json_value(v.to_json())
    if hasattr(v, "to_dict"):
        return to_json_value(v.to_dict())
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return to_json_value(dataclasses.asdict(v))
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json_value(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    return v


def _new_subscription_id() -> str:
    return "0x" + os.urandom(16).hex()


# ---------------------------------------------------------------------------
# Server side


class Subscription:
    """A subscription a service created; ``err()`` is set once it ends (unsubscribed or closed)."""

    def __init__(self, id: str, namespace: str):
        self.id = id
        self.namespace = namespace
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._on_done: list = []

    def err(self) -> threading.Event:
        return self._done

    def on_done(self, callback) -> None:
        """Call ``callback()`` once the subscription ends (at once if it has).

        Python-only: a producer waiting on its own mailbox gets a wake-up message
        this way, instead of a second thread selecting on ``err()``.
        """
        with self._lock:
            if not self._done.is_set():
                self._on_done.append(callback)
                return
        callback()

    def _finish(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
            callbacks, self._on_done = self._on_done, []
        for cb in callbacks:
            cb()


class Notifier:
    """Sends a connection's subscription notifications (geth's rpc.Notifier).

    Notifications for a subscription are held back until the answer that
    carries its id has been written, so the client always learns the id first.
    """

    def __init__(self, conn: "_Codec", closed: threading.Event):
        self._conn = conn
        self._closed = closed
        self._lock = threading.Lock()
        self._active: Dict[str, Subscription] = {}
        self._inactive: Dict[str, list] = {}
        self._subs: Dict[str, Subscription] = {}
        self._threads: list = []

    def create_subscription(self) -> Subscription:
        sub = Subscription(_new_subscription_id(), "")
        with self._lock:
            if len(self._subs) >= maxSubscriptionsPerConn:
                raise RPCError(callbackErrorCode, "too many subscriptions on this connection")
            self._subs[sub.id] = sub
            self._inactive[sub.id] = []
        return sub

    def notify(self, id: str, data) -> None:
        """Send ``data`` to the subscription ``id``; dropped once it has ended."""
        with self._lock:
            sub = self._subs.get(id)
            if sub is None:
                return
            pending = self._inactive.get(id)
            if pending is not None:
                pending.append(data)
                return
        self._send(sub, data)

    def _send(self, sub: Subscription, data) -> None:
        msg = {
            "jsonrpc": "2.0",
            "method": sub.namespace + notificationMethodSuffix,
            "params": {"subscription": sub.id, "result": to_json_value(data)},
        }
        self._conn.write(msg)

    def closed(self) -> threading.Event:
        """Set when the connection this notifier writes to is closed."""
        return self._closed

    def go(self, target, name: str, *args) -> None:
        """Run a subscription's producer on a thread the connection joins when it closes."""
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def activate(self, id: str, namespace: str) -> None:
        # Python-only: the answer with the id has been written; release held notifications.
        with self._lock:
            sub = self._subs.get(id)
            if sub is None:
                return
            sub.namespace = namespace
            pending = self._inactive.pop(id, [])
        for data in pending:
            self._send(sub, data)

    def unsubscribe(self, id: str) -> bool:
        with self._lock:
            sub = self._subs.pop(id, None)
            self._inactive.pop(id, None)
        if sub is None:
            return False
        sub._finish()
        return True

    def close(self) -> None:
        # Python-only: end every subscription and wait for the producers.
        with self._lock:
            subs = list(self._subs.values())
            self._subs.clear()
            self._inactive.clear()
            threads, self._threads = self._threads, []
        for sub in subs:
            sub._finish()
        for t in threads:
            if t is not threading.current_thread():
                t.join()


class Server:
    """Holds services under namespaces and answers their calls (geth's rpc.Server)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._services: Dict[str, Any] = {}
        self._codecs: set = set()
        self._stopped = False

    def register_name(self, name: str, receiver) -> None:
        """Offer the public methods of ``receiver`` as ``<name>_<method>``."""
        methods = {}
        for attr in dir(receiver):
            if attr.startswith("_"):
                continue
            fn = getattr(receiver, attr)
            if callable(fn):
                methods[rpc_name(attr)] = fn
        if not methods:
            raise ValueError("service %r doesn't have any suitable methods to expose" % (receiver,))
        with self._lock:
            self._services.setdefault(name, {}).update(methods)

    def serve_codec(self, codec: "_Codec") -> None:
        """Answer requests read from ``codec`` until it closes; then end its subscriptions."""
        with self._lock:
            if self._stopped:
                codec.close()
                return
            self._codecs.add(codec)
        closed = threading.Event()
        notifier = Notifier(codec, closed)
        try:
            while True:
                raw = codec.read()
                if raw is None:
                    break
                answer = self._handle_raw(raw, notifier)
                if answer is not None:
                    codec.write(answer)
                    self._activate(answer, notifier)
        finally:
            closed.set()
            notifier.close()
            codec.close()
            with self._lock:
                self._codecs.discard(codec)

    def stop(self) -> None:
        """Close every connection; new ones are refused."""
        with self._lock:
            self._stopped = True
            codecs = list(self._codecs)
        for c in codecs:
            c.close()

    # -- request handling -------------------------------------------------

    def _handle_raw(self, raw, notifier):
        if len(raw) > maxRequestContentLength:
            return _error_answer(None, RPCError(invalidRequestCode, "request too large"))
        try:
            req = json.loads(raw)
        except (ValueError, TypeError) as err:
            return _error_answer(None, RPCError(parseErrorCode, "parse error: %s" % err))
        if isinstance(req, list):
            if not req:
                return _error_answer(None, RPCError(invalidRequestCode, "empty batch"))
            answers = [self._handle(r, notifier) for r in req]
            answers = [a for a in answers if a is not None]
            return answers or None
        return self._handle(req, notifier)

    def _activate(self, answer, notifier):
        for a in answer if isinstance(answer, list) else [answer]:
            sub = a.pop("_subscription", None)
            if sub is not None:
                notifier.activate(*sub)

    def _handle(self, req, notifier):
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            rid = req.get("id") if isinstance(req, dict) else None
            return _error_answer(rid, RPCError(invalidRequestCode, "invalid request"))
        rid = req.get("id")
        is_notification = "id" not in req
        method = req["method"]
        params = req.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error_answer(rid, RPCError(invalidParamsCode, "non-array args"))
        try:
            if method.endswith(unsubscribeMethodSuffix):
                result = self._unsubscribe(params, notifier)
                sub = None
            elif method.endswith(subscribeMethodSuffix):
                if is_notification:
                    return None  # a subscription nobody can learn the id of is not made
                namespace = method[: -len(subscribeMethodSuffix)]
                result, sub = self._subscribe(namespace, params, notifier), namespace
            else:
                result = self._call(method, params)
                sub = None
        except RPCError as err:
            return None if is_notification else _error_answer(rid, err)
        except Exception as err:  # a service's own error is the caller's answer, as in geth
            log.debug("RPC method failed", method=method, err=err)
            return None if is_notification else _error_answer(rid, RPCError(callbackErrorCode, str(err)))
        if is_notification:
            return None
        answer = {"jsonrpc": "2.0", "id": rid, "result": to_json_value(result)}
        if sub is not None:
            answer["_subscription"] = (result, sub)
        return answer

    def _lookup(self, method: str):
        namespace, _, name = method.partition("_")
        with self._lock:
            fn = self._services.get(namespace, {}).get(name)
        if fn is None or getattr(fn, "rpc_subscription", False):
            raise RPCError(methodNotFoundCode, "the method %s does not exist/is not available" % method)
        return fn

    def _call(self, method: str, params: list):
        fn = self._lookup(method)
        _check_args(fn, params)
        return fn(*params)

    def _subscribe(self, namespace: str, params: list, notifier: Notifier):
        if not params or not isinstance(params[0], str):
            raise RPCError(invalidParamsCode, "expected subscription name as first argument")
        name = params[0]
        with self._lock:
            fn = self._services.get(namespace, {}).get(name)
        if fn is None or not getattr(fn, "rpc_subscription", False):
            raise RPCError(methodNotFoundCode, 'no "%s" subscription in %s namespace' % (name, namespace))
        _check_args(fn, [notifier] + params[1:])
        sub = fn(notifier, *params[1:])
        return sub.id

    def _unsubscribe(self, params: list, notifier: Notifier):
        if not params or not isinstance(params[0], str):
            raise RPCError(invalidParamsCode, "expected subscription id as first argument")
        if not notifier.unsubscribe(params[0]):
            raise ErrSubscriptionNotFound
        return True


def _check_args(fn, params):
    try:
        inspect.signature(fn).bind(*params)
    except TypeError as err:
        raise RPCError(invalidParamsCode, "invalid params: %s" % err) from None


def _error_answer(rid, err: RPCError) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "error": err.to_json()}


# ---------------------------------------------------------------------------
# Transports: a codec reads and writes whole JSON messages.


class _Codec:
    """One end of a connection carrying JSON messages (geth's ServerCodec)."""

    def read(self) -> Optional[str]:
        """The next message, or None once the connection is closed."""
        raise NotImplementedError

    def write(self, msg) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _PipeCodec(_Codec):
    # One end of an in-process connection: two queues, one per direction.
    def __init__(self, inbox: "queue.Queue", outbox: "queue.Queue"):
        self._inbox, self._outbox = inbox, outbox
        self._closed = threading.Event()

    def read(self):
        if self._closed.is_set():
            return None
        raw = self._inbox.get()
        if raw is None:
            self._closed.set()
            self._outbox.put(None)
        return raw

    def write(self, msg):
        if self._closed.is_set():
            raise ClientQuitError("connection closed")
        self._outbox.put(json.dumps(msg))

    def close(self):
        if not self._closed.is_set():
            self._closed.set()
            self._outbox.put(None)  # the other end reads EOF
            self._inbox.put(None)  # and so does our own reader


def _pipe_codecs():
    a, b = queue.Queue(), queue.Queue()
    return _PipeCodec(a, b), _PipeCodec(b, a)


class WebsocketCodec(_Codec):
    """A ``websockets`` sync connection (client or server side) as a codec."""

    def __init__(self, ws, close=None):
        self._ws = ws
        self._close = close if close is not None else ws.close  # how to close ws
        self._wlock = threading.Lock()

    def read(self):
        from websockets.exceptions import ConnectionClosed

        try:
            msg = self._ws.recv()
        except ConnectionClosed:
            return None
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        return msg

    def write(self, msg):
        from websockets.exceptions import ConnectionClosed

        with self._wlock:
            try:
                self._ws.send(json.dumps(msg))
            except ConnectionClosed as err:
                raise ClientQuitError("connection closed") from err

    def close(self):
        self._close()


# ---------------------------------------------------------------------------
# Client


class ClientSubscription:
    """A subscription seen from the client: notifications go to its queue."""

    def __init__(self, client: "Client", namespace: str, channel, decode):
        self.client = client
        self.namespace = namespace
        self.channel = channel
        self.decode = decode
        self.id = ""
        self._err = ErrQueue()

    def err(self) -> ErrQueue:
        """Yields the error that ended the subscription (if any), then None."""
        return self._err

    def unsubscribe(self) -> None:
        if self._err.closed:
            return
        self._err.close()
        if self.client._forget(self.id):
            try:
                self.client.call(self.namespace + unsubscribeMethodSuffix, self.id, timeout=5.0)
            except (RPCError, ClientQuitError, TimeoutError) as err:
                log.trace("Unsubscribe failed", id=self.id, err=err)

    def _deliver(self, result) -> None:
        value = self.decode(result) if self.decode is not None else result
        try:
            self.channel.put_nowait(value) if hasattr(self.channel, "put_nowait") else self.channel.put(value)
        except queue.Full:
            # geth drops a subscription whose reader falls too far behind.
            self._quit(RPCError(callbackErrorCode, "subscription queue overflow"))

    def _quit(self, err) -> None:
        if self._err.closed:
            return
        if err is not None:
            self._err.put(err)
        self._err.close()
        self.client._forget(self.id)


class Client:
    """A JSON-RPC client on one connection; one thread reads its answers (geth's rpc.Client)."""

    def __init__(self, codec: _Codec, joins=()):
        self._codec = codec
        self._joins = list(joins)  # threads serving the other end in this process
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: Dict[int, tuple] = {}
        self._subs: Dict[str, ClientSubscription] = {}
        self._closed = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._dispatch, name="rpc.Client.dispatch", daemon=True)
        self._thread.start()

    def call(self, method: str, *args, timeout: float = defaultCallTimeout):
        """Call ``method`` with ``args``; returns its result or raises RPCError."""
        return self._request(method, list(args), None, timeout)

    def subscribe(self, namespace: str, channel, method: str, *args, decode: Callable = None,
                  timeout: float = defaultCallTimeout) -> ClientSubscription:
        """Subscribe to ``<namespace>_subscribe(method, *args)``; results go to ``channel``.

        ``decode`` turns each notification's JSON result into the value put on
        the channel (geth decodes into the channel's element type).
        """
        sub = ClientSubscription(self, namespace, channel, decode)
        self._request(namespace + subscribeMethodSuffix, [method] + list(args), sub, timeout)
        return sub

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        self._codec.close()
        for t in [self._thread] + self._joins:
            if t is not threading.current_thread():
                t.join()

    def _request(self, method, params, sub, timeout):
        answer: "queue.Queue" = queue.Queue(maxsize=1)
        with self._lock:
            if self._closed:
                raise errClientQuit
            rid = next(self._ids)
            self._pending[rid] = (answer, sub)
        try:
            self._codec.write({"jsonrpc": "2.0", "id": rid, "method": method, "params": to_json_value(params)})
        except ClientQuitError:
            with self._lock:
                self._pending.pop(rid, None)
            raise
        try:
            ok, value = answer.get(timeout=timeout)
        except queue.Empty:
            with self._lock:
                self._pending.pop(rid, None)
            raise TimeoutError("no answer to %s within %.1fs" % (method, timeout)) from None
        if not ok:
            raise value
        return value

    def _forget(self, sub_id) -> bool:
        with self._lock:
            return self._subs.pop(sub_id, None) is not None

    def _dispatch(self):
        err = errClientQuit
        try:
            while True:
                raw = self._codec.read()
                if raw is None:
                    break
                try:
                    msg = json.loads(raw)
                except ValueError as e:
                    log.debug("Bad JSON from RPC server", err=e)
                    continue
                for m in msg if isinstance(msg, list) else [msg]:
                    if isinstance(m, dict):
                        self._handle(m)
        except Exception as e:  # the reader must not die silently
            log.error("RPC client reader failed", err=e, exc_info=True)
            err = ClientQuitError(str(e))
        finally:
            with self._lock:
                self._closed = True
                pending, self._pending = self._pending, {}
                subs, self._subs = list(self._subs.values()), {}
            for answer, _ in pending.values():
                answer.put((False, err))
            lost = None if self._closing.is_set() else ClientQuitError("connection lost")
            for sub in subs:
                sub._quit(lost)
            self._codec.close()

    def _handle(self, m):
        if "id" not in m and isinstance(m.get("method"), str) and m["method"].endswith(notificationMethodSuffix):
            params = m.get("params") or {}
            if not isinstance(params, dict):
                return
            with self._lock:
                sub = self._subs.get(params.get("subscription"))
            if sub is not None:
                sub._deliver(params.get("result"))
            return
        with self._lock:
            entry = self._pending.pop(m.get("id"), None)
        if entry is None:
            return
        answer, sub = entry
        if "error" in m:
            e = m["error"] if isinstance(m["error"], dict) else {}
            answer.put((False, RPCError(e.get("code", callbackErrorCode), str(e.get("message", "")), e.get("data"))))
            return
        result = m.get("result")
        if sub is not None:
            sub.id = result
            with self._lock:
                self._subs[result] = sub  # before the reader sees any notification for it
        answer.put((True, result))


def dial_in_proc(server: Server) -> Client:
    """A client talking to ``server`` inside this process (geth's rpc.DialInProc)."""
    ours, theirs = _pipe_codecs()
    t = threading.Thread(target=server.serve_codec, args=(theirs,), name="rpc.Server.ServeCodec", daemon=True)
    t.start()
    return Client(ours, joins=[t])


def dial_websocket(url: str, origin: str = "", timeout: float = 10.0) -> Client:
    """A client on a WebSocket connection to ``url`` (geth's rpc.DialWebsocket)."""
    from websockets.sync.client import connect

    kw = {"open_timeout": timeout, "max_size": maxRequestContentLength * 8}
    if origin:
        kw["origin"] = origin
    # websockets' current API opens the connection as a context manager (17.1 warns
    # about a connection used outside one); the codec's close() exits the context.
    stack = contextlib.ExitStack()
    ws = stack.enter_context(connect(url, **kw))
    return Client(WebsocketCodec(ws, stack.close))


class WebsocketServer:
    """Serves an RPC server over WebSocket on a loopback address (geth's node startWS).

    ``endpoint()`` is the ``ws://host:port`` URL; ``stop()`` closes every
    connection and ends the accept thread.
    """

    def __init__(self, handler: Server, host: str = "127.0.0.1", port: int = 0):
        from websockets.sync.server import serve

        self.handler = handler
        self._ws = serve(self._serve, host, port, max_size=maxRequestContentLength)
        self.host, self.port = self._ws.socket.getsockname()[:2]
        self._thread = threading.Thread(target=self._ws.serve_forever, name="rpc.WSServer.serve", daemon=True)
        self._thread.start()

    def endpoint(self) -> str:
        return "ws://%s:%d" % (self.host, self.port)

    def _serve(self, ws):
        self.handler.serve_codec(WebsocketCodec(ws))

    def stop(self) -> None:
        self._ws.shutdown()
        self._thread.join()
