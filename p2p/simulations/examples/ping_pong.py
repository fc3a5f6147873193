"""The ping-pong example service (geth's p2p/simulations/examples/ping-pong.go).

Every connected pair of nodes sends "PING" every ``ping_interval`` seconds
(10, as in geth) and answers each ping with "PONG"; the protocol's node info
counts the messages received. Importing this module registers the service as
``ping-pong`` with the adapters' registry (geth's main does it), so the sim
adapter, the exec adapter's children and ``p2psim-server --services
ping-pong`` all find it. The example's ``main`` (an HTTP simulation server on
port 8888) is ``p2psim-server --services ping-pong`` here.
"""

from __future__ import annotations

import queue
import threading

from p2p import message as p2p_message
from p2p.log import get_logger
from p2p.node.node import Service
from p2p.protocol import Protocol
from p2p.simulations.adapters import types

pingMsgCode = 0
pongMsgCode = 1

# geth pings every 10 seconds; tests set a shorter interval on the service.
defaultPingInterval = 10.0


def new_ping_pong_service(id, ping_interval: float = defaultPingInterval) -> PingPongService:
    return PingPongService(id, ping_interval)


class PingPongService(Service):
    """Sends pings to every peer and answers theirs."""

    def __init__(self, id, ping_interval: float = defaultPingInterval):
        self.id = id
        self.log = get_logger("p2p.ping-pong").new(**{"node.id": id.terminal_string()})
        self.ping_interval = ping_interval
        self._lock = threading.Lock()
        self.received = 0

    def protocols(self):
        return [Protocol(name="ping-pong", version=1, length=2, run=self.run, node_info=self.info)]

    def apis(self):
        return []

    def start(self, server) -> None:
        self.log.info("ping-pong service starting")

    def stop(self) -> None:
        self.log.info("ping-pong service stopping")

    def info(self):
        with self._lock:
            return {"received": self.received}

    def run(self, peer, rw):
        log = self.log.new(**{"peer.id": peer.id().terminal_string()})
        err_c: "queue.Queue" = queue.Queue()
        done = threading.Event()  # ends the pinger when run returns (geth's ticker goroutine leaks)

        def pinger():
            while not done.wait(self.ping_interval):
                log.info("sending ping")
                try:
                    p2p_message.send(rw, pingMsgCode, "PING")
                except Exception as err:  # the first error ends the protocol
                    err_c.put(err)
                    return

        def reader():
            while True:
                try:
                    msg = rw.read_msg()
                    payload = msg.payload.read()
                except Exception as err:  # EOF when the peer goes away
                    err_c.put(err)
                    return
                log.info("received message", **{"msg.code": msg.code, "msg.payload": payload})
                with self._lock:
                    self.received += 1
                if msg.code == pingMsgCode:
                    log.info("sending pong")
                    # geth sends the pong from a new goroutine; a write never waits for
                    # our own reads here, so the reader sends it itself.
                    try:
                        p2p_message.send(rw, pongMsgCode, "PONG")
                    except Exception as err:  # the first error ends the protocol
                        err_c.put(err)
                        return

        threads = [threading.Thread(target=pinger, name="ping-pong.Run.ping", daemon=True),
                   threading.Thread(target=reader, name="ping-pong.Run.read", daemon=True)]
        for t in threads:
            t.start()
        try:
            return err_c.get()
        finally:
            # The pinger ends at once (or when its send fails on the closing peer);
            # the reader ends when the peer's connection closes.
            done.set()


def _service(ctx):
    return new_ping_pong_service(ctx.config.id)


services = {"ping-pong": _service}

if "ping-pong" not in types.serviceFuncs:
    types.register_services(services)
