"""The simulation HTTP API: a server driving a Network, and its client (geth's http.go).

Routes, JSON fields and status codes are geth 1.8.16's, so geth's own
``p2psim`` command can drive this server and our ``p2psim`` can drive geth's:

=========================================  =====================================================
``GET /``                                  the network: ``{"id", "nodes": [{"info","config","up"}], "conns"}``
                                           (a browser, ``Accept: text/html``, gets the web view)
``POST /start``, ``POST /stop``            start / stop every node
``POST /reset``                            forget every node and connection
``GET /events``                            server-sent events ``event: network``; ``?current=true``
                                           first replays nodes and conns, ``?filter=proto:0,1-other:*``
                                           selects message events (none without a filter; ``*``: all)
``GET /snapshot``, ``POST /snapshot``      take / load a snapshot
``GET /mocker``                            the mocker names
``POST /mocker/start``                     form ``mocker-type``, ``node-count``
``POST /mocker/stop``
``GET /nodes``, ``POST /nodes``            list NodeInfo / create from a NodeConfig (201)
``GET /nodes/:node``                       NodeInfo (``:node`` is an ID or a name)
``POST /nodes/:node/start``, ``.../stop``
``POST|DELETE /nodes/:node/conn/:peer``    connect / disconnect
``GET /nodes/:node/rpc``                   WebSocket to the node's JSON-RPC
``GET /ui/...``                            the web view's files
=========================================  =====================================================

Go's net/http server becomes the standard library's ThreadingHTTPServer
(:class:`ListeningServer`, Python only); ``Server`` is the handler, as in geth.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import http.client
import http.server
import json
import mimetypes
import os
import re
import socket
import socketserver
import threading
import urllib.parse
from typing import Callable, Dict, List, Optional, Tuple

from p2p.discover.node import hex_id
from p2p.event import Feed, Subscription, ErrQueue
from p2p.log import get_logger
from p2p.node import rpc
from p2p.node.api import node_info_from_json, node_info_to_json
from p2p.server import NodeInfo
from p2p.simulations.adapters.types import NodeConfig, random_node_config
from p2p.simulations.events import Event
from p2p.simulations.mocker import get_mocker_list, lookup_mocker
from p2p.simulations.network import Msg, Network, Snapshot

__all__ = [
    "Client", "new_client", "DefaultClient", "SubscribeOpts", "ClientError",
    "Server", "new_server", "new_msg_filters", "MsgFilters", "MsgFilter", "ListeningServer",
    "maxBodySize", "maxQueuedEvents", "maxMockerNodes",
]

log = get_logger("simulations")

# Largest request body read, in bytes: a snapshot of a few thousand nodes fits.
maxBodySize = 32 * 1024 * 1024
# Most nodes one mocker may create.
maxMockerNodes = 10000
# Events queued for one /events stream before the client counts as too slow.
maxQueuedEvents = 10000

UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui")


# ---------------------------------------------------------------------------
# Client


class ClientError(Exception):
    """An answer other than 200 or 201 (``status`` is its code)."""

    def __init__(self, status: int, reason: str, body: str):
        self.status = status
        self.reason = reason
        self.body = body
        super().__init__("unexpected HTTP status: %d %s: %s" % (status, reason, body))


def new_client(url: str) -> "Client":
    return Client(url)


class Client:
    """A client of the simulation HTTP API at ``url`` (e.g. ``http://127.0.0.1:8888``)."""

    def __init__(self, url: str, timeout: Optional[float] = 300.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError("simulation API URL must be http://host:port, got %r" % url)
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._prefix = parsed.path

    def get_network(self) -> Network:
        """The network: its nodes (config and up) and connections."""
        return Network.from_dict(self.get("/"))

    def start_network(self) -> None:
        self.post("/start", None)

    def stop_network(self) -> None:
        self.post("/stop", None)

    def create_snapshot(self) -> Snapshot:
        return Snapshot.from_dict(self.get("/snapshot"))

    def load_snapshot(self, snap: Snapshot) -> None:
        self.post("/snapshot", snap.to_dict())

    def subscribe_network(self, events, opts: "SubscribeOpts") -> Subscription:
        """Deliver the server's network events to the queue ``events`` until unsubscribed.

        Raises ClientError if the server refuses (a bad filter, say). The
        subscription's ``err()`` yields the error that ended the stream, if any.
        """
        path = "%s/events?current=%s&filter=%s" % (
            self._prefix, "true" if opts.current else "false", urllib.parse.quote(opts.filter, safe=":,-*"))
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request("GET", path, headers={"Accept": "text/event-stream"})
            sock = conn.sock  # the response takes it over from the connection
            res = conn.getresponse()
            if res.status != 200:
                body = res.read(64 * 1024).decode("utf-8", "replace")
                raise ClientError(res.status, res.reason, body)
        except BaseException:
            conn.close()
            raise
        sock.settimeout(None)  # a quiet network is not a dead stream
        return _SSESubscription(conn, sock, res, events)

    def get_nodes(self) -> List[NodeInfo]:
        return [node_info_from_json(d) for d in self.get("/nodes") or []]

    def create_node(self, config: NodeConfig) -> NodeInfo:
        return node_info_from_json(self.post("/nodes", config.marshal_json()))

    def get_node(self, node_id: str) -> NodeInfo:
        return node_info_from_json(self.get("/nodes/%s" % node_id))

    def start_node(self, node_id: str) -> None:
        self.post("/nodes/%s/start" % node_id, None)

    def stop_node(self, node_id: str) -> None:
        self.post("/nodes/%s/stop" % node_id, None)

    def connect_node(self, node_id: str, peer_id: str) -> None:
        self.post("/nodes/%s/conn/%s" % (node_id, peer_id), None)

    def disconnect_node(self, node_id: str, peer_id: str) -> None:
        self.delete("/nodes/%s/conn/%s" % (node_id, peer_id))

    def rpc_client(self, node_id: str, timeout: float = 10.0) -> rpc.Client:
        """A JSON-RPC client on the node's WebSocket route (close it when done)."""
        base_url = self.url.replace("http", "ws", 1)
        return rpc.dial_websocket("%s/nodes/%s/rpc" % (base_url, node_id), timeout=timeout)

    def get(self, path: str):
        """GET ``path``; the decoded JSON answer."""
        return self.send("GET", path, None)

    def post(self, path: str, in_):
        """POST ``in_`` as JSON (nothing if None) to ``path``; the decoded JSON answer."""
        return self.send("POST", path, in_)

    def delete(self, path: str):
        return self.send("DELETE", path, None)

    def send(self, method: str, path: str, in_):
        """One request with a JSON body; the decoded JSON answer (None if empty)."""
        body = b"" if in_ is None else json.dumps(in_).encode()
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request(method, self._prefix + path, body=body,
                         headers={"Content-Type": "application/json", "Accept": "application/json"})
            res = conn.getresponse()
            data = res.read()
        finally:
            conn.close()
        if res.status not in (200, 201):
            raise ClientError(res.status, res.reason, data.decode("utf-8", "replace").strip())
        if not data.strip():
            return None
        return json.loads(data)


DefaultClient = Client("http://localhost:8888")


class SubscribeOpts:
    """``current``: first the existing nodes and conns; ``filter``: which message events."""

    __slots__ = ("current", "filter")

    def __init__(self, current: bool = False, filter: str = ""):
        self.current = current
        self.filter = filter


class _SSESubscription(Subscription):
    """Reads a server-sent-events stream in a thread and delivers its network events.

    geth's producer reads lines in one goroutine and selects on them and the
    stop channel in another; here the reader thread delivers through a Feed,
    whose send ends when the subscriber leaves, and unsubscribe shuts the
    socket to end the read.
    """

    def __init__(self, conn: http.client.HTTPConnection, sock: socket.socket, res: http.client.HTTPResponse, events):
        self._conn = conn
        self._sock = sock
        self._res = res
        self._feed = Feed()
        self._sub = self._feed.subscribe(events)
        self._err = ErrQueue()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="simulations.Client.SubscribeNetwork", daemon=True)
        self._thread.start()

    def _run(self):
        err = None
        try:
            while True:
                line = self._res.readline(maxBodySize)
                if not line:
                    break
                line = line.decode("utf-8", "replace").rstrip("\r\n")
                if not line.startswith("data:"):
                    continue
                data = line[len("data:"):].strip()
                try:
                    event = Event.from_dict(json.loads(data))
                except ValueError as e:
                    err = ValueError("error decoding SSE event: %s" % e)
                    break
                self._feed.send(event)
                if self._sub.err().closed:
                    break
        except (OSError, http.client.HTTPException) as e:
            err = e
        finally:
            with self._lock:
                stopped = self._stopped
                self._stopped = True
            if err is not None and not stopped:
                self._err.put(err)
            self._err.close()
            self._res.close()
            self._conn.close()

    def err(self) -> ErrQueue:
        return self._err

    def unsubscribe(self) -> None:
        with self._lock:
            self._stopped = True
        self._sub.unsubscribe()  # a blocked delivery gives up
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # ends the blocked read
        except OSError:
            pass
        if self._thread is not threading.current_thread():
            self._thread.join()


# ---------------------------------------------------------------------------
# Server


class _Request:
    """What a handler gets about the request (geth's *http.Request, the parts used)."""

    def __init__(self, method: str, target: str, headers, body: bytes, handler):
        self.method = method
        parsed = urllib.parse.urlsplit(target)
        self.path = parsed.path
        self.raw_query = parsed.query
        self.headers = headers
        self.body = body
        self.context: Dict[str, object] = {}
        self._handler = handler  # the BaseHTTPRequestHandler, for streaming and upgrades

    def query(self, key: str) -> str:
        """The first value of ``key`` in the query string, or ''."""
        vals = urllib.parse.parse_qs(self.raw_query, keep_blank_values=True).get(key)
        return vals[0] if vals else ""

    def form_value(self, key: str) -> str:
        """Go's FormValue: a url-encoded POST body first, then the query string."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if self.method in ("POST", "PUT", "PATCH") and ctype == "application/x-www-form-urlencoded":
            vals = urllib.parse.parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).get(key)
            if vals:
                return vals[0]
        return self.query(key)


class _ResponseWriter:
    """geth's http.ResponseWriter: headers, a status, a body, and Flush for streams."""

    def __init__(self, handler: "_HTTPHandler"):
        self._h = handler
        self._headers: Dict[str, str] = {}
        self.status: Optional[int] = None
        self._body: List[bytes] = []
        self._streaming = False

    def header(self) -> Dict[str, str]:
        return self._headers

    def write_header(self, status: int) -> None:
        if self.status is None:
            self.status = status

    def write(self, data: bytes) -> None:
        if self.status is None:
            self.status = 200
        if self._streaming:
            self._h.wfile.write(data)
        else:
            self._body.append(data)

    def flush(self) -> None:
        """Send what is written so far; the response becomes a stream ended by closing."""
        if not self._streaming:
            self._streaming = True
            self._h.close_connection = True
            self._send_head(None)
            for b in self._body:
                self._h.wfile.write(b)
            self._body = []
        self._h.wfile.flush()

    def _send_head(self, length: Optional[int]) -> None:
        h = self._h
        h.send_response(self.status or 200)
        for k, v in self._headers.items():
            h.send_header(k, v)
        if length is not None:
            h.send_header("Content-Length", str(length))
        else:
            h.send_header("Connection", "close")
        h.end_headers()

    def finish(self) -> None:
        if self._streaming:
            self._h.wfile.flush()
            return
        body = b"".join(self._body)
        self._send_head(len(body))
        if self._h.command != "HEAD":
            self._h.wfile.write(body)


def _http_error(w: _ResponseWriter, message: str, status: int) -> None:
    # departure: http-json-errors: errors are {"error": msg} JSON (geth sends text/plain), never a traceback
    w.header()["Content-Type"] = "application/json"
    w.header()["X-Content-Type-Options"] = "nosniff"
    w.write_header(status)
    w.write(json.dumps({"error": message}).encode() + b"\n")


def _not_found(w: _ResponseWriter, message: str = "404 page not found") -> None:
    _http_error(w, message, 404)


def new_server(network: Network) -> "Server":
    return Server(network)


class Server:
    """The HTTP API of one Network (an HTTP handler; serve it with :class:`ListeningServer`)."""

    def __init__(self, network: Network):
        self.router = _Router()
        self.network = network
        self.mocker_stop: Optional[threading.Event] = None  # set: stops the running mocker
        self.mocker_mtx = threading.Lock()
        self._mocker_thread: Optional[threading.Thread] = None  # Python only: joined on close
        self._streams: set = set()  # Python only: the /events streams, ended on close
        self._streams_lock = threading.Lock()
        self._streams_cond = threading.Condition(self._streams_lock)  # notified when _streams changes
        self._closed = threading.Event()

        self.OPTIONS("/", self.options)
        self.GET("/", self.get_network)
        self.POST("/start", self.start_network)
        self.POST("/stop", self.stop_network)
        self.POST("/mocker/start", self.start_mocker)
        self.POST("/mocker/stop", self.stop_mocker)
        self.GET("/mocker", self.get_mockers)
        self.POST("/reset", self.reset_network)
        self.GET("/events", self.stream_network_events)
        self.GET("/snapshot", self.create_snapshot)
        self.POST("/snapshot", self.load_snapshot)
        self.POST("/nodes", self.create_node)
        self.GET("/nodes", self.get_nodes)
        self.GET("/nodes/:nodeid", self.get_node)
        self.POST("/nodes/:nodeid/start", self.start_node)
        self.POST("/nodes/:nodeid/stop", self.stop_node)
        self.POST("/nodes/:nodeid/conn/:peerid", self.connect_node)
        self.DELETE("/nodes/:nodeid/conn/:peerid", self.disconnect_node)
        self.GET("/nodes/:nodeid/rpc", self.node_rpc)
        self.GET("/ui/*filepath", self.ui)  # Python only: the web view

    def get_network(self, w, req) -> None:
        """The network as JSON, or the web view for a browser."""
        if _wants_html(req):
            self.ui(w, req)
            return
        self.json(w, 200, self.network.to_dict())

    def start_network(self, w, req) -> None:
        try:
            self.network.start_all()
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        w.write_header(200)

    def stop_network(self, w, req) -> None:
        try:
            self.network.stop_all()
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        w.write_header(200)

    def start_mocker(self, w, req) -> None:
        """Start the mocker of form value ``mocker-type`` on ``node-count`` new nodes."""
        with self.mocker_mtx:
            if self.mocker_stop is not None:
                _http_error(w, "mocker already running", 500)
                return
            mocker_type = req.form_value("mocker-type")
            mocker_fn = lookup_mocker(mocker_type)
            if mocker_fn is None:
                _http_error(w, 'unknown mocker type "%s"' % mocker_type, 400)
                return
            count = req.form_value("node-count")
            if not re.fullmatch(r"[+-]?[0-9]{1,18}", count):
                _http_error(w, "invalid node-count provided", 400)
                return
            node_count = int(count)
            if not 1 <= node_count <= maxMockerNodes:
                # departure: mocker-node-count: a count outside 1..maxMockerNodes is refused (geth panics below 2)
                _http_error(w, "invalid node-count provided (1..%d)" % maxMockerNodes, 400)
                return
            self.mocker_stop = threading.Event()
            t = threading.Thread(target=_run_mocker, args=(mocker_fn, self.network, self.mocker_stop, node_count),
                                 name="simulations.mocker.%s" % mocker_type, daemon=True)
            self._mocker_thread = t
            t.start()
        w.write_header(200)

    def stop_mocker(self, w, req) -> None:
        with self.mocker_mtx:
            if self.mocker_stop is None:
                _http_error(w, "stop channel not initialized", 500)
                return
            self.mocker_stop.set()
            self.mocker_stop = None
        w.write_header(200)

    def get_mockers(self, w, req) -> None:
        self.json(w, 200, get_mocker_list())

    def reset_network(self, w, req) -> None:
        self.network.reset()
        w.write_header(200)

    def stream_network_events(self, w, req) -> None:
        """Network events as server-sent events, until the client goes away."""
        events = _EventBuffer(maxQueuedEvents)
        sub = self.network.events().subscribe(events)
        try:
            filters = None
            filter_param = req.query("filter")
            if filter_param == "*":
                # departure: events-filter-all: filter=* selects every message event (geth answers 400)
                filters = _AllMsgs()
            elif filter_param != "":
                try:
                    filters = new_msg_filters(filter_param)
                except ValueError as e:
                    _http_error(w, str(e), 400)
                    return

            def write(event: str, data: str) -> None:
                w.write(("event: %s\ndata: %s\n\n" % (event, data)).encode())
                w.flush()

            def write_event(event: Event) -> None:
                write("network", json.dumps(event.to_dict()))

            def write_err(err) -> None:
                write("error", str(err).replace("\n", " "))

            w.header()["Content-Type"] = "text/event-stream; charset=utf-8"
            w.header()["Cache-Control"] = "no-cache"
            w.write_header(200)
            w.write(b"\n\n")
            w.flush()

            stream = _Stream(req._handler, events)
            with self._streams_cond:
                if self._closed.is_set():
                    stream.close()
                    return
                self._streams.add(stream)
                self._streams_cond.notify_all()
            try:
                if req.query("current") == "true":
                    try:
                        snap = self.network.snapshot()
                    except Exception as e:
                        write_err(e)
                        return
                    from p2p.simulations.events import new_event

                    for node in snap.nodes:
                        write_event(new_event(node.node))
                    for conn in snap.conns:
                        write_event(new_event(conn))

                while True:
                    kind, event = events.get()
                    if kind == "gone":
                        return
                    if kind == "overflow":
                        write_err("too many events queued for this client: reconnect with ?current=true")
                        return
                    if event.msg is not None and (filters is None or not filters.match(event.msg)):
                        continue
                    write_event(event)
            except OSError:
                return  # the client went away mid-write
            finally:
                sub.unsubscribe()
                stream.close()
                with self._streams_cond:
                    self._streams.discard(stream)
                    self._streams_cond.notify_all()
        finally:
            sub.unsubscribe()

    def create_snapshot(self, w, req) -> None:
        try:
            snap = self.network.snapshot()
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        self.json(w, 200, snap.to_dict())

    def load_snapshot(self, w, req) -> None:
        try:
            snap = Snapshot.from_dict(_decode_json(req.body))
        except ValueError as e:
            _http_error(w, str(e), 400)
            return
        try:
            self.network.load(snap)
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        self.json(w, 200, self.network.to_dict())

    def create_node(self, w, req) -> None:
        """Create a node from the NodeConfig in the body; 201 with its NodeInfo."""
        try:
            d = _decode_json(req.body) if req.body.strip() else {}  # an empty body is an empty config
            config = NodeConfig.unmarshal_json(d)
        except ValueError as e:
            _http_error(w, str(e), 400)
            return
        if config.private_key is None:
            if any(config.id):
                _http_error(w, "a node config with an id needs its private_key", 400)
                return
            # departure: http-create-node-key: a config without key or id gets a fresh key (geth fails to start it)
            fresh = random_node_config()
            config.id, config.private_key = fresh.id, fresh.private_key
            if not config.name:
                config.name = fresh.name
            if not config.port:
                config.port = fresh.port
        try:
            node = self.network.new_node_with_config(config)
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        self.json(w, 201, node_info_to_json(node.node_info()))

    def get_nodes(self, w, req) -> None:
        nodes = self.network.get_nodes()
        self.json(w, 200, [node_info_to_json(n.node_info()) for n in nodes])

    def get_node(self, w, req) -> None:
        node = req.context["node"]
        self.json(w, 200, node_info_to_json(node.node_info()))

    def start_node(self, w, req) -> None:
        node = req.context["node"]
        try:
            self.network.start(node.id())
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        self.json(w, 200, node_info_to_json(node.node_info()))

    def stop_node(self, w, req) -> None:
        node = req.context["node"]
        try:
            self.network.stop(node.id())
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        self.json(w, 200, node_info_to_json(node.node_info()))

    def connect_node(self, w, req) -> None:
        node, peer = req.context["node"], req.context["peer"]
        try:
            self.network.connect(node.id(), peer.id())
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        self.json(w, 200, node_info_to_json(node.node_info()))

    def disconnect_node(self, w, req) -> None:
        node, peer = req.context["node"], req.context["peer"]
        try:
            self.network.disconnect(node.id(), peer.id())
        except Exception as e:
            _http_error(w, str(e), 500)
            return
        self.json(w, 200, node_info_to_json(node.node_info()))

    def options(self, w, req) -> None:
        """CORS preflight: 200 allowing the Content-Type header."""
        w.header()["Access-Control-Allow-Headers"] = "Content-Type"
        w.write_header(200)

    def node_rpc(self, w, req) -> None:
        """Upgrade to a WebSocket and serve the node's JSON-RPC on it."""
        node = req.context["node"]
        h = req._handler
        key = req.headers.get("Sec-WebSocket-Key", "")
        upgrade = (req.headers.get("Upgrade") or "").lower()
        connection = (req.headers.get("Connection") or "").lower()
        if upgrade != "websocket" or "upgrade" not in connection or not key:
            _http_error(w, "not a WebSocket handshake", 400)
            return
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                raise ValueError
        except ValueError:
            _http_error(w, "bad Sec-WebSocket-Key", 400)
            return
        if req.headers.get("Sec-WebSocket-Version") != "13":
            w.header()["Sec-WebSocket-Version"] = "13"
            _http_error(w, "unsupported WebSocket version", 426)
            return
        try:
            running = node.client() is not None  # only a running node serves RPC
        except Exception:
            running = False
        if not running:
            _http_error(w, "node not running", 503)
            return
        ws = _accept_websocket(h, key)
        stream = _Stream(h, None, ws=ws)
        with self._streams_cond:
            if self._closed.is_set():
                ws.close()
                return
            self._streams.add(stream)
            self._streams_cond.notify_all()
        try:
            node.serve_rpc(ws)
        except Exception as e:
            log.debug("node RPC connection ended", node=node.id().terminal_string(), err=e)
        finally:
            with self._streams_cond:
                self._streams.discard(stream)
                self._streams_cond.notify_all()
            ws.close()
            w._streaming = True  # the response was the 101; nothing more to send
            h.close_connection = True

    def serve_http(self, w, req) -> None:
        self.router.serve_http(w, req)

    def GET(self, path: str, handle) -> None:  # noqa: N802 - HTTP verbs in capitals (README, "How it is built")
        self.router.handle("GET", path, self.wrap_handler(handle))

    def POST(self, path: str, handle) -> None:  # noqa: N802
        self.router.handle("POST", path, self.wrap_handler(handle))

    def DELETE(self, path: str, handle) -> None:  # noqa: N802
        self.router.handle("DELETE", path, self.wrap_handler(handle))

    def OPTIONS(self, path: str, handle) -> None:  # noqa: N802
        # like geth, one handler answers OPTIONS on every path
        self.router.handle("OPTIONS", "/*path", self.wrap_handler(handle))

    def json(self, w, status: int, data) -> None:
        """``data`` as a JSON answer (with a newline, as Go's json.Encoder writes)."""
        w.header()["Content-Type"] = "application/json"
        w.write_header(status)
        w.write(json.dumps(data).encode() + b"\n")

    def wrap_handler(self, handler):
        """Add the CORS headers and look up ``:nodeid`` / ``:peerid`` (by ID or name; 404 if unknown)."""

        def wrapped(w, req, params):
            w.header()["Access-Control-Allow-Origin"] = "*"
            w.header()["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
            for param, key in (("nodeid", "node"), ("peerid", "peer")):
                id = params.get(param, "")
                if id == "":
                    continue
                node = None
                try:
                    node = self.network.get_node(hex_id(id))
                except ValueError:
                    node = self.network.get_node_by_name(id)
                if node is None:
                    _not_found(w, "%s not found: %s" % (key, id))
                    return
                req.context[key] = node
            handler(w, req)

        return wrapped

    # Python only from here: the web view's files, and ending threads on close.

    def ui(self, w, req) -> None:
        """A file of the web view (``/ui/...``); ``/`` and ``/ui/`` give index.html."""
        rel = req.path[len("/ui/"):] if req.path.startswith("/ui/") else ""
        rel = rel or "index.html"
        full = os.path.realpath(os.path.join(UI_DIR, rel))
        if not full.startswith(os.path.realpath(UI_DIR) + os.sep) or not os.path.isfile(full):
            _not_found(w)
            return
        ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript",):
            ctype += "; charset=utf-8"
        with open(full, "rb") as f:
            data = f.read()
        w.header()["Content-Type"] = ctype
        w.header()["Cache-Control"] = "no-cache"
        w.write_header(200)
        w.write(data)

    def close(self) -> None:
        """Stop the mocker and end every /events stream and RPC connection; wait for them."""
        self._closed.set()
        with self.mocker_mtx:
            if self.mocker_stop is not None:
                self.mocker_stop.set()
                self.mocker_stop = None
            t, self._mocker_thread = self._mocker_thread, None
        with self._streams_lock:
            streams = list(self._streams)
        for s in streams:
            s.end()
        if t is not None:
            t.join()


def _run_mocker(fn, network, quit, node_count):
    try:
        fn(network, quit, node_count)
    except Exception as e:  # a mocker's failure must not pass silently
        log.error("mocker failed", err=e, exc_info=True)


def new_msg_filters(filter_param: str) -> "MsgFilters":
    """Message filters from a query parameter like ``eth:0,1-bzz:*``.

    Filters are separated by ``-``; each is ``<proto>:<codes>`` with codes
    separated by ``,``; ``*`` or ``-1`` matches every code. ValueError if malformed.
    """
    filters = MsgFilters()
    for filter in filter_param.split("-"):
        proto_codes = filter.split(":", 1)
        if len(proto_codes) != 2 or proto_codes[0] == "" or proto_codes[1] == "":
            raise ValueError("invalid message filter: %s" % filter)
        proto = proto_codes[0]
        for code in proto_codes[1].split(","):
            if code == "*" or code == "-1":
                filters.add(MsgFilter(proto=proto, code=-1))
                continue
            if not re.fullmatch(r"[0-9]{1,20}", code) or int(code) >= 1 << 64:
                raise ValueError("invalid message code: %s" % code)
            filters.add(MsgFilter(proto=proto, code=int(code)))
    return filters


class MsgFilters(set):
    """A set of MsgFilter values (geth's map[MsgFilter]struct{})."""

    def match(self, msg: Msg) -> bool:
        """Whether a filter has the message's protocol and either its code or -1."""
        if MsgFilter(proto=msg.protocol, code=-1) in self:
            return True
        return MsgFilter(proto=msg.protocol, code=msg.code) in self


class _AllMsgs(MsgFilters):
    """``filter=*``: every message (a protocol name may hold the ``-`` that separates filters)."""

    def match(self, msg: Msg) -> bool:
        return True


# proto: a protocol name; code: a message code, -1 for all
MsgFilter = collections.namedtuple("MsgFilter", ["proto", "code"])


def _wants_html(req: _Request) -> bool:
    # content negotiation on GET /: browsers ask for text/html, API clients for JSON
    return "text/html" in (req.headers.get("Accept") or "")


def _decode_json(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError("request body is not UTF-8: %s" % e) from None
    except json.JSONDecodeError as e:
        raise ValueError("invalid JSON: %s" % e) from None


class _EventBuffer:
    """One /events stream's mailbox; the network's feed puts events in without blocking."""

    # departure: sse-slow-client: past maxQueuedEvents the stream is ended instead of stalling the network

    def __init__(self, limit: int):
        self._limit = limit
        self._q = collections.deque()
        self._cond = threading.Condition()
        self._overflow = False

    def put(self, event) -> None:
        with self._cond:
            if self._overflow:
                return
            if len(self._q) >= self._limit:
                self._overflow = True
                self._q.clear()
                self._q.append(("overflow", None))
            else:
                self._q.append(("event", event))
            self._cond.notify()

    def post(self, kind: str) -> None:
        with self._cond:
            self._q.appendleft((kind, None))
            self._cond.notify()

    def get(self):
        with self._cond:
            while not self._q:
                self._cond.wait()
            return self._q.popleft()


class _Stream:
    """A long-lived connection (an /events stream or an RPC WebSocket) the server may end.

    For /events it also watches the socket, as geth's CloseNotify does: when
    the client closes, the stream's mailbox gets ("gone").
    """

    def __init__(self, handler, events: Optional[_EventBuffer], ws=None):
        self._sock = handler.connection
        self._events = events
        self._ws = ws
        self._done = threading.Event()
        self._watcher = None
        if events is not None:
            self._watcher = threading.Thread(target=self._close_notify,
                                             name="simulations.Server.StreamNetworkEvents.closeNotify", daemon=True)
            self._watcher.start()

    def _close_notify(self) -> None:
        try:
            while not self._done.is_set():
                try:
                    data = self._sock.recv(4096)
                except socket.timeout:
                    continue  # an idle client is still there
                if not data:
                    break
        except OSError:
            pass
        self._events.post("gone")

    def end(self) -> None:
        """End the stream from the server side (on close)."""
        if self._events is not None:
            self._events.post("gone")
        if self._ws is not None:
            self._ws.close()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Called by the handler when it is done: end and join the watcher."""
        self._done.set()
        try:
            self._sock.shutdown(socket.SHUT_RD)  # wakes the watcher's recv
        except OSError:
            pass
        if self._watcher is not None:
            self._watcher.join()


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _accept_websocket(h, key: str):
    """Answer the WebSocket handshake and wrap the socket in a websockets sync connection."""
    from websockets.protocol import State
    from websockets.server import ServerProtocol
    from websockets.sync.connection import Connection

    accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
    sock = h.connection
    sock.settimeout(None)  # the websocket connection has its own timeouts
    protocol = ServerProtocol(state=State.OPEN, max_size=rpc.maxRequestContentLength)
    # the connection's reader starts at once, so it exists before the client may send a frame
    ws = Connection(sock, protocol, ping_interval=None, close_timeout=2)
    head = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % accept)
    h.wfile.write(head.encode())
    h.wfile.flush()
    return ws


class _Router:
    """geth's httprouter, the part used: ``:param`` and a trailing ``*catchall``; 404 and 405."""

    def __init__(self):
        self._routes: List[Tuple[str, List[str], Callable]] = []

    def handle(self, method: str, path: str, handler) -> None:
        self._routes.append((method, path.strip("/").split("/") if path != "/" else [], handler))

    @staticmethod
    def _match(pattern: List[str], parts: List[str]) -> Optional[Dict[str, str]]:
        params = {}
        for i, seg in enumerate(pattern):
            if seg.startswith("*"):
                params[seg[1:]] = "/" + "/".join(parts[i:])
                return params
            if i >= len(parts):
                return None
            if seg.startswith(":"):
                if parts[i] == "":
                    return None
                params[seg[1:]] = parts[i]
            elif seg != parts[i]:
                return None
        return params if len(parts) == len(pattern) else None

    def serve_http(self, w, req) -> None:
        path = req.path
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        allowed = []
        method = "GET" if req.method == "HEAD" else req.method
        for m, pattern, handler in self._routes:
            params = self._match(pattern, parts)
            if params is None:
                continue
            if m == method:
                handler(w, req, params)
                return
            if m != "OPTIONS":
                allowed.append(m)
        if allowed:
            w.header()["Allow"] = ", ".join(sorted(set(allowed)) + ["OPTIONS"])
            _http_error(w, "Method Not Allowed", 405)
            return
        _not_found(w)


class _HTTPHandler(http.server.BaseHTTPRequestHandler):
    """Turns one HTTP connection's requests into Server.serve_http calls."""

    protocol_version = "HTTP/1.1"
    server_version = "gethp2p-p2psim"
    timeout = 30.0  # an idle keep-alive connection is closed after this

    def _dispatch(self) -> None:
        w = _ResponseWriter(self)
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            _http_error(w, "chunked request bodies are not supported; send Content-Length", 411)
            w.finish()
            self.close_connection = True
            return
        try:
            n = int(length) if length else 0
            if n < 0:
                raise ValueError
        except ValueError:
            _http_error(w, "bad Content-Length", 400)
            w.finish()
            self.close_connection = True
            return
        if n > maxBodySize:
            _http_error(w, "request body too large (limit %d bytes)" % maxBodySize, 413)
            w.finish()
            self.close_connection = True
            return
        body = _read_body(self.rfile, n)
        if len(body) < n:
            self.close_connection = True
            return
        req = _Request(self.command, self.path, self.headers, body, self)
        try:
            self.server.api.serve_http(w, req)  # type: ignore[attr-defined]
        except Exception as e:
            log.error("HTTP handler failed", method=self.command, path=req.path, err=e, exc_info=True)
            if w.status is None and not w._streaming:
                w._headers = {}
                w._body = []
                _http_error(w, "internal error: %s" % type(e).__name__, 500)
        if w.status is None:
            w.write_header(200)
        try:
            w.finish()
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_OPTIONS = do_PUT = do_PATCH = do_HEAD = _dispatch

    def send_error(self, code, message=None, explain=None):
        # the base class answers malformed requests with an HTML page; JSON instead
        try:
            short, _ = self.responses.get(code, ("", ""))
        except Exception:
            short = ""
        body = json.dumps({"error": message or short}).encode() + b"\n"
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # a request line we could not parse still gets a status line
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format, *args):
        log.debug("http: " + (format % args), remote="%s:%d" % self.client_address[:2])


def _read_body(rfile, n: int) -> bytes:
    # read in pieces, so memory follows the bytes that arrive, not the length claimed
    chunks = []
    left = n
    try:
        while left > 0:
            b = rfile.read(min(left, 65536))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
    except (OSError, socket.timeout):
        pass
    return b"".join(chunks)


class ListeningServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Python only: serves a :class:`Server` on ``addr`` (geth's http.ListenAndServe / httptest).

    ``url`` is its http://host:port; ``close()`` stops accepting, ends every
    connection (streams included) and waits for every thread it started.
    """

    daemon_threads = True
    block_on_close = False  # close() joins the threads itself, after ending the streams
    allow_reuse_address = True

    def __init__(self, api: Server, addr: str = "127.0.0.1:0"):
        host, _, port = addr.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.api = api
        self._conns: Dict[int, socket.socket] = {}
        self._conn_threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        super().__init__((host, int(port)), _HTTPHandler)
        self.addr = "%s:%d" % (host if ":" not in host else "[%s]" % host, self.server_address[1])
        self.url = "http://%s" % self.addr
        self._serve_thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.5},
                                              name="simulations.ListeningServer.serve", daemon=True)
        self._serve_thread.start()

    def process_request(self, request, client_address):
        t = threading.Thread(target=self._serve_conn, args=(request, client_address),
                             name="simulations.Server.ServeHTTP", daemon=True)
        with self._lock:
            self._conn_threads = [x for x in self._conn_threads if x.is_alive()]
            self._conn_threads.append(t)
            self._conns[id(request)] = request
        t.start()

    def _serve_conn(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._lock:
                self._conns.pop(id(request), None)
            self.shutdown_request(request)

    def handle_error(self, request, client_address):
        log.debug("HTTP connection failed", remote="%s:%d" % client_address[:2], exc_info=True)

    def close(self) -> None:
        self.api.close()
        self.shutdown()
        self._serve_thread.join()
        self.server_close()
        with self._lock:
            conns = list(self._conns.values())
            threads = list(self._conn_threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join()
