"""The exec adapter: every node its own OS process (geth's p2p/simulations/adapters/exec.go).

The parent starts ``python -m p2p.simulations.adapters.exec <services> <id>``
with the node's config in the ``_P2P_NODE_CONFIG`` environment variable (geth
re-executes its own binary as ``p2p-node``). The child runs a
:class:`p2p.node.node.Node` listening for devp2p on 127.0.0.1 and serving its
RPC over WebSocket on 127.0.0.1, and logs "WebSocket endpoint opened
url=ws://..." on stderr; the parent reads that address, dials it and asks
``admin_nodeInfo``. From then on the parent talks to the node only over RPC.

No orphans: besides geth's SIGTERM on stop, the child watches a pipe from
its parent on stdin and shuts down when it reads EOF, which the kernel
delivers when the parent exits however it exits (SIGKILL included).

The child needs its services in the registry (types.serviceFuncs): the parent
passes the modules that define the registered service functions, and the
child imports them; a module that registers its services when imported
(as ``p2p.simulations.examples.ping_pong`` does) works.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from typing import Dict, List, Optional

from p2p import server as p2p_server
from p2p.discover.node import NodeID
from p2p.log import get_logger, set_verbosity
from p2p.node import node as p2p_node
from p2p.node import rpc
from p2p.node.api import node_info_from_json
from p2p.simulations.adapters import types
from p2p.simulations.adapters.types import NodeAdapter, NodeConfig, RPCDialer, ServiceContext
from p2p.simulations.adapters.types import Node as AdapterNode
from p2p.simulations.adapters.ws import wsAddrPattern

log = get_logger("p2p.simulations")

# How long a child may take to announce its WebSocket endpoint (geth waits 10 s; a
# Python child imports its dependencies first, which takes longer on a loaded machine),
# and to stop on SIGTERM before it is killed (geth's 5 s).
startTimeout = 30.0
stopTimeout = 5.0

# geth's node.DefaultConfig.P2P.MaxPeers
_DEFAULT_MAX_PEERS = 25


def new_exec_adapter(base_dir: str) -> ExecAdapter:
    return ExecAdapter(base_dir)


class ExecAdapter(NodeAdapter):
    """Runs each node as a child process; their data directories go under ``base_dir``."""

    def __init__(self, base_dir: str):
        self.base_dir = base_dir
        self.nodes: Dict[NodeID, "ExecNode"] = {}

    def name(self) -> str:
        return "exec-adapter"

    def new_node(self, config: NodeConfig) -> "ExecNode":
        if not config.services:
            raise ValueError("node must have at least one service")
        for service in config.services:
            if service not in types.serviceFuncs:
                raise ValueError("unknown node service %r" % service)
        # the first 12 characters of the ID, as geth (Unix socket paths are short)
        dir = os.path.join(self.base_dir, config.id.hex()[:12])
        try:
            os.mkdir(dir, 0o755)
        except OSError as err:
            raise ValueError("error creating node directory: %s" % err) from None
        conf = ExecNodeConfig(
            stack={
                "data_dir": os.path.join(dir, "data"),
                "ws_host": "127.0.0.1",
                "ws_port": 0,
                "p2p": {
                    "enable_msg_events": False,
                    "no_discovery": True,
                    "max_peers": _DEFAULT_MAX_PEERS,
                    # departure: exec-loopback: the child listens on 127.0.0.1, never on an external IP
                    "listen_addr": "127.0.0.1:%d" % config.port,
                },
            },
            node=config,
        )
        node = ExecNode(config.id, dir, conf, self)
        self.nodes[node.id] = node
        return node


class ExecNode(AdapterNode):
    """A node running in a child process, reached over WebSocket RPC."""

    def __init__(self, id: NodeID, dir: str, config: "ExecNodeConfig", adapter: ExecAdapter):
        self.id = id
        self.dir = dir
        self.config = config
        self.cmd: Optional[subprocess.Popen] = None
        self.info: Optional[p2p_server.NodeInfo] = None
        self.adapter = adapter
        self._client: Optional[rpc.Client] = None
        self.ws_addr = ""
        self.new_cmd = self.exec_command
        self._stderr_thread: Optional[threading.Thread] = None

    def addr(self) -> Optional[bytes]:
        if self.info is None:
            return None
        return self.info.enode.encode()

    def client(self) -> Optional[rpc.Client]:
        return self._client

    def start(self, snapshots: Optional[Dict[str, bytes]] = None) -> None:
        """Start the child and wait for its RPC endpoint; on failure the child is stopped."""
        if self.cmd is not None:
            raise RuntimeError("already started")
        try:
            self._start(snapshots)
        except BaseException as err:
            log.error("node failed to start", err=err)
            self.stop()
            raise

    def _start(self, snapshots):
        conf_copy = ExecNodeConfig(self.config.stack, self.config.node, snapshots,
                                   {id.hex(): n.ws_addr for id, n in self.adapter.nodes.items()})
        conf_data = json.dumps(conf_copy.to_json())
        env = dict(os.environ)
        env["_P2P_NODE_CONFIG"] = conf_data
        argv = self.new_cmd()
        # stdin is the child's lifeline: it stops when the pipe reaches EOF (we exited).
        self.cmd = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                    close_fds=True)
        # Copy the child's stderr to ours, and pick the WebSocket address out of it.
        ws_addr_c: "queue.Queue" = queue.Queue()
        self._stderr_thread = threading.Thread(target=_copy_stderr, args=(self.cmd.stderr, ws_addr_c),
                                               name="adapters.ExecNode.Start.stderr", daemon=True)
        self._stderr_thread.start()
        try:
            ws_addr = ws_addr_c.get(timeout=startTimeout)
        except queue.Empty:
            raise TimeoutError("timed out waiting for WebSocket address on stderr") from None
        if not ws_addr:
            raise RuntimeError("failed to read WebSocket address from stderr")
        try:
            client = rpc.dial_websocket(ws_addr, timeout=startTimeout)
        except Exception as err:
            raise RuntimeError("error dialing rpc websocket: %s" % err) from err
        try:
            info = node_info_from_json(client.call("admin_nodeInfo", timeout=startTimeout))
        except Exception as err:
            client.close()
            raise RuntimeError("error getting node info: %s" % err) from err
        self._client = client
        self.ws_addr = ws_addr
        self.info = info

    def exec_command(self) -> list:
        """The child's command line (geth's execCommand; no reexec in Python)."""
        return [sys.executable, "-m", "p2p.simulations.adapters.exec",
                ",".join(self.config.node.services), self.id.hex()]

    def stop(self) -> None:
        """SIGTERM the child, wait up to stopTimeout, then kill it; every helper thread ends."""
        cmd = self.cmd
        if cmd is None:
            return
        try:
            if self._client is not None:
                self._client.close()
                self._client = None
                self.ws_addr = ""
                self.info = None
            try:
                cmd.send_signal(signal.SIGTERM)
            except OSError:
                cmd.kill()
            try:
                cmd.wait(stopTimeout)
            except subprocess.TimeoutExpired:
                cmd.kill()
                cmd.wait()
        finally:
            if cmd.stdin is not None:
                cmd.stdin.close()
            if self._stderr_thread is not None:
                self._stderr_thread.join()  # the child's stderr is closed: it has exited
                self._stderr_thread = None
            if cmd.stderr is not None:
                cmd.stderr.close()
            self.cmd = None

    def node_info(self) -> p2p_server.NodeInfo:
        info = p2p_server.NodeInfo(id=self.id.hex())
        if self._client is not None:
            try:
                info = node_info_from_json(self._client.call("admin_nodeInfo"))
            except (rpc.RPCError, rpc.ClientQuitError, TimeoutError, ValueError) as err:
                log.debug("admin_nodeInfo failed", id=self.id.terminal_string(), err=err)
        return info

    def serve_rpc(self, client_conn) -> None:
        """Relay RPC between ``client_conn`` (a codec or websockets connection) and the child."""
        from websockets.sync.client import connect

        ours = client_conn if hasattr(client_conn, "read") else rpc.WebsocketCodec(client_conn)
        theirs = rpc.WebsocketCodec(connect(self.ws_addr, origin="http://localhost").__enter__())

        def join(src, dst):
            try:
                while True:
                    raw = src.read()
                    if raw is None:
                        return
                    dst.write(json.loads(raw))
            except (rpc.ClientQuitError, ValueError):
                return
            finally:
                dst.close()

        t = threading.Thread(target=join, args=(theirs, ours), name="adapters.ExecNode.ServeRPC", daemon=True)
        t.start()
        join(ours, theirs)
        t.join()

    def snapshots(self) -> Dict[str, bytes]:
        if self._client is None:
            raise RuntimeError("RPC not started")
        return {k: base64.b64decode(v) for k, v in (self._client.call("simulation_snapshot") or {}).items()}


def _copy_stderr(stream, ws_addr_c):
    # Python-only: the reader of geth's Start, which also copies the child's stderr to ours.
    found = False
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        try:
            sys.stderr.write(line)
        except (OSError, ValueError):
            pass
        if not found and "WebSocket endpoint opened" in line:
            m = wsAddrPattern.search(line)
            ws_addr_c.put(m.group(0) if m else "")
            found = True
    if not found:
        ws_addr_c.put("")


class ExecNodeConfig:
    """What the child gets: the stack's options, the node config, snapshots and peers' RPC addresses.

    JSON as geth's (``stack``, ``node``, ``snapshots`` with base64 values as Go
    encodes []byte, ``peer_addrs``), plus ``service_modules``: the modules the
    child imports to fill its service registry.
    """

    def __init__(self, stack: dict, node: NodeConfig, snapshots: Optional[Dict[str, bytes]] = None,
                 peer_addrs: Optional[Dict[str, str]] = None):
        self.stack = stack
        self.node = node
        self.snapshots = snapshots
        self.peer_addrs = peer_addrs
        # the modules read by from_json (to_json derives them from node.services instead)
        self.service_modules: List[str] = []

    def to_json(self) -> dict:
        d = {"stack": self.stack, "node": self.node.marshal_json()}
        if self.snapshots:
            d["snapshots"] = {k: base64.b64encode(v).decode() for k, v in self.snapshots.items()}
        if self.peer_addrs:
            d["peer_addrs"] = self.peer_addrs
        modules = sorted({getattr(types.serviceFuncs[s], "__module__", "") for s in self.node.services})
        d["service_modules"] = [m for m in modules if m and m != "__main__"]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ExecNodeConfig":
        if not isinstance(d, dict):
            raise ValueError("node config is not an object")
        snapshots = {k: base64.b64decode(v) for k, v in (d.get("snapshots") or {}).items()}
        conf = cls(d.get("stack") or {}, NodeConfig.unmarshal_json(d.get("node") or {}),
                   snapshots or None, d.get("peer_addrs") or {})
        conf.service_modules = list(d.get("service_modules") or [])
        return conf


def exec_p2p_node(argv=None) -> int:
    """The child: run one node until SIGTERM or until the parent goes away."""
    argv = sys.argv if argv is None else argv
    set_verbosity(3, sys.stderr)
    service_names = argv[1].split(",")
    conf_env = os.environ.get("_P2P_NODE_CONFIG", "")
    if conf_env == "":
        log.crit("missing _P2P_NODE_CONFIG")
        return 1
    try:
        conf = ExecNodeConfig.from_json(json.loads(conf_env))
    except ValueError as err:
        log.crit("error decoding _P2P_NODE_CONFIG", err=err)
        return 1
    for module in conf.service_modules:
        importlib.import_module(module)

    stack_conf = conf.stack
    p2p_conf = stack_conf.get("p2p") or {}
    node_log = get_logger("p2p.node").new(**{"node.id": conf.node.id.terminal_string()})
    stack = p2p_node.Node(p2p_node.Config(
        p2p=p2p_server.Config(
            private_key=conf.node.private_key,
            max_peers=int(p2p_conf.get("max_peers", _DEFAULT_MAX_PEERS)),
            no_discovery=bool(p2p_conf.get("no_discovery", True)),
            enable_msg_events=bool(p2p_conf.get("enable_msg_events", False)),
            listen_addr=str(p2p_conf.get("listen_addr", "127.0.0.1:0")),
            name=conf.node.name,
            logger=get_logger("p2p").new(**{"node.id": conf.node.id.terminal_string()}),
        ),
        ws_host=str(stack_conf.get("ws_host", "127.0.0.1")),
        ws_port=int(stack_conf.get("ws_port", 0)),
        logger=node_log,
    ))

    services = {}
    for name in service_names:
        service_func = types.serviceFuncs.get(name)
        if service_func is None:
            log.crit("unknown node service", name=name)
            return 1

        def constructor(node_ctx, name=name, service_func=service_func):
            ctx = ServiceContext(WsRPCDialer(conf.peer_addrs), node_ctx, conf.node)
            if conf.snapshots is not None:
                ctx.snapshot = conf.snapshots.get(name)
            service = service_func(ctx)
            services[name] = service
            return service

        stack.register(constructor)
    stack.register(lambda ctx: SnapshotService(services))

    # One mailbox for the two reasons to stop: SIGTERM and EOF on stdin (the parent is gone).
    stop_c: "queue.Queue" = queue.Queue()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_c.put("Received SIGTERM, shutting down..."))

    def watch_parent():
        # os.read on the raw fd, not sys.stdin: a daemon thread blocked in a buffered
        # read holds the buffer's lock, and the interpreter aborts at exit when it
        # cannot take that lock ("Fatal Python error: _enter_buffered_busy").
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop_c.put("Parent process gone, shutting down...")

    threading.Thread(target=watch_parent, name="adapters.execP2PNode.watchParent", daemon=True).start()
    try:
        stack.start()
    except Exception as err:
        log.crit("error starting node stack", err=err)
        return 1
    reason = stop_c.get()
    log.info(reason)
    # A stop that hangs must not leave the process running: exit anyway.
    deadline = threading.Timer(stopTimeout, os._exit, args=(1,))
    deadline.daemon = True
    deadline.start()
    try:
        stack.stop()
    except Exception as err:
        log.error("error stopping node stack", err=err)
    deadline.cancel()
    return 0


class SnapshotService(p2p_node.Service):
    """Offers ``simulation_snapshot`` in the child (geth's snapshotService)."""

    def __init__(self, services: dict):
        self.services = services

    def apis(self):
        return [p2p_node.API("simulation", "1.0", SnapshotAPI(self.services))]

    def protocols(self):
        return []

    def start(self, server) -> None:
        pass

    def stop(self) -> None:
        pass


class SnapshotAPI:
    def __init__(self, services: dict):
        self._services = services

    def snapshot(self) -> dict:
        """The snapshots of the services that take them, base64 as Go's JSON encodes []byte."""
        snapshots = {}
        for name, service in self._services.items():
            snap = getattr(service, "snapshot", None)
            if snap is not None:
                snapshots[name] = base64.b64encode(snap()).decode()
        return snapshots


class WsRPCDialer(RPCDialer):
    """Dials other nodes' RPC over WebSocket by ID, from the addresses the parent passed."""

    def __init__(self, addrs: Dict[str, str]):
        self.addrs = addrs or {}

    def dial_rpc(self, id: NodeID) -> rpc.Client:
        addr = self.addrs.get(id.hex())
        if not addr:
            raise ValueError("unknown node: %s" % id.hex())
        return rpc.dial_websocket(addr, origin="http://localhost")


if __name__ == "__main__":
    sys.exit(exec_p2p_node())
