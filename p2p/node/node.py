"""A devp2p node hosting services (the part of geth's node/node.go and service.go simulations use).

A :class:`Node` is a container: services are registered as constructors,
and every :meth:`Node.start` builds them afresh (geth's ``ServiceConstructor``),
collects their protocols into a new :class:`p2p.server.Server`, starts the
server and then each service, and serves the services' APIs plus the admin
API over JSON-RPC: in process (:meth:`Node.rpc_handler`) and, when
``Config.ws_port`` is set, over WebSocket on ``Config.ws_host``.
:meth:`Node.stop` undoes all of it; every thread it started has ended when it
returns. A stopped node can be started again.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable, List, Optional

from p2p import crypto
from p2p import server as p2p_server
from p2p.log import get_logger
from p2p.node import api as node_api
from p2p.node import rpc


class NodeError(Exception):
    pass


ErrNodeStopped = NodeError("node not started")
ErrNodeRunning = NodeError("node already running")
ErrServiceUnknown = NodeError("unknown service")


@dataclasses.dataclass
class API:
    """A set of RPC methods offered under a namespace (geth's rpc.API)."""

    namespace: str
    version: str
    service: Any
    public: bool = False


class Service:
    """What a node runs (geth's node.Service): protocols, APIs, start and stop.

    Subclasses override what they need; the defaults offer nothing.
    """

    def protocols(self) -> list:
        return []

    def apis(self) -> List[API]:
        return []

    def start(self, server) -> None:
        pass

    def stop(self) -> None:
        pass


class ServiceContext:
    """Handed to each service constructor (geth's node.ServiceContext)."""

    def __init__(self, config: "Config", services: dict):
        self.config = config
        self.services = services  # class -> service constructed before this one

    def service(self, cls):
        """The already constructed service of class ``cls``; ErrServiceUnknown if none."""
        svc = self.services.get(cls)
        if svc is None:
            raise ErrServiceUnknown
        return svc


@dataclasses.dataclass
class Config:
    """What a node needs (a subset of geth's node.Config)."""

    # The p2p server options; the node fills in protocols on each start.
    p2p: p2p_server.Config = dataclasses.field(default_factory=p2p_server.Config)
    # Where the WebSocket RPC endpoint listens; ws_port None means no WebSocket endpoint.
    ws_host: str = "127.0.0.1"
    ws_port: Optional[int] = None
    # A p2p.log.Logger; None means get_logger("p2p.node").
    logger: Any = None


class Node:
    """A container of services sharing one p2p server and one RPC server."""

    def __init__(self, config: Optional[Config] = None):
        self.config = config or Config()
        self.log = self.config.logger or get_logger("p2p.node")
        self.lock = threading.Lock()  # guards the fields below; held only briefly
        self._startstop = threading.Lock()  # one start or stop at a time
        self.service_funcs: List[Callable] = []
        self.services: dict = {}
        self._server: Optional[p2p_server.Server] = None
        self._rpc: Optional[rpc.Server] = None
        self._ws: Optional[rpc.WebsocketServer] = None
        self._stop = threading.Event()
        self._stop.set()

    def register(self, constructor: Callable) -> None:
        """Add ``constructor(ctx) -> Service``; only while the node is stopped."""
        with self.lock:
            if self._server is not None:
                raise ErrNodeRunning
            self.service_funcs.append(constructor)

    def start(self) -> None:
        """Build the services, then start the p2p server, the services and the RPC endpoints."""
        with self._startstop:
            if self.server() is not None:
                raise ErrNodeRunning
            services = {}
            for constructor in self.service_funcs:
                ctx = ServiceContext(self.config, dict(services))
                svc = constructor(ctx)
                if type(svc) in services:
                    raise NodeError("duplicate service: %s" % type(svc).__name__)
                services[type(svc)] = svc
            cfg = dataclasses.replace(self.config.p2p, protocols=list(self.config.p2p.protocols))
            if cfg.private_key is None:
                # geth's Config.NodeKey without a data directory: an ephemeral key
                self.config.p2p.private_key = cfg.private_key = crypto.generate_key()
            for svc in services.values():
                cfg.protocols.extend(svc.protocols())
            running = p2p_server.Server(cfg)
            running.start()
            started = []
            try:
                for svc in services.values():
                    svc.start(running)
                    started.append(svc)
                with self.lock:
                    self._server = running
                    self.services = services
                self._start_rpc(services)
            except BaseException:
                with self.lock:
                    self._server = None
                    self.services = {}
                for svc in reversed(started):
                    svc.stop()
                running.stop()
                self._stop_rpc()
                raise
            self._stop.clear()
        self.log.info("Started node", services=",".join(type(s).__name__ for s in services.values()))

    def _start_rpc(self, services) -> None:
        handler = rpc.Server()
        for a in self.apis() + [a for svc in services.values() for a in svc.apis()]:
            handler.register_name(a.namespace, a.service)
        with self.lock:
            self._rpc = handler
        if self.config.ws_port is not None:
            ws = rpc.WebsocketServer(handler, self.config.ws_host, self.config.ws_port)
            with self.lock:
                self._ws = ws
            # geth's log line, which the exec adapter's parent reads to find the endpoint
            self.log.info("WebSocket endpoint opened", url=ws.endpoint())

    def _stop_rpc(self) -> None:
        # Called without self.lock: connection threads being closed may still call node.server().
        with self.lock:
            ws, handler = self._ws, self._rpc
            self._ws = self._rpc = None
        if ws is not None:
            ws.stop()
            self.log.info("WebSocket endpoint closed", url=ws.endpoint())
        if handler is not None:
            handler.stop()

    def stop(self) -> None:
        """Stop the RPC endpoints, the services and the p2p server; ErrNodeStopped if not running."""
        with self._startstop:
            if self.server() is None:
                raise ErrNodeStopped
            self._stop_rpc()
            with self.lock:
                running, services = self._server, self.services
                self._server, self.services = None, {}
            failures = []
            for svc in services.values():
                try:
                    svc.stop()
                except Exception as err:  # one failing service must not keep the rest running
                    failures.append("%s: %s" % (type(svc).__name__, err))
            running.stop()
            self._stop.set()
        if failures:
            raise NodeError("services failed to stop: " + "; ".join(failures))

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the node is stopped; False if ``timeout`` passed first."""
        return self._stop.wait(timeout)

    def rpc_handler(self) -> rpc.Server:
        """The in-process RPC server; ErrNodeStopped if not running."""
        with self.lock:
            if self._rpc is None:
                raise ErrNodeStopped
            return self._rpc

    def attach(self) -> rpc.Client:
        """An in-process RPC client to this node."""
        return rpc.dial_in_proc(self.rpc_handler())

    def server(self):
        """The running p2p server, or None."""
        with self.lock:
            return self._server

    def service(self, cls):
        """The running service of class ``cls``."""
        with self.lock:
            if self._server is None:
                raise ErrNodeStopped
            svc = self.services.get(cls)
            if svc is None:
                raise ErrServiceUnknown
            return svc

    def ws_endpoint(self) -> str:
        with self.lock:
            return self._ws.endpoint() if self._ws is not None else ""

    def apis(self) -> List[API]:
        """The node's own APIs: the admin namespace (geth's Node.apis)."""
        return [
            API("admin", "1.0", node_api.PrivateAdminAPI(self)),
            API("admin", "1.0", node_api.PublicAdminAPI(self), public=True),
        ]
