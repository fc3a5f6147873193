"""Mockers: scripted node churn in a simulation network (geth's p2p/simulations/mocker.go).

A mocker is ``fn(net, quit, node_count)``: it creates ``node_count`` nodes,
starts them, connects them in a ring, and then (depending on the mocker)
keeps stopping and starting them until ``quit`` (a threading.Event, geth's
quit channel) is set. The HTTP API runs one in a thread on ``POST
/mocker/start``.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable, Dict, List, Optional

from p2p.discover.node import NodeID
from p2p.log import get_logger
from p2p.simulations.adapters.types import random_node_config

__all__ = ["lookup_mocker", "get_mocker_list", "MockerFn", "connect_nodes_in_ring"]

log = get_logger("simulations")

MockerFn = Callable[[Any, threading.Event, int], None]  # (network, quit, node_count)

# How often startStop stops a node, and how long the node stays down.
startStopInterval = 10.0
startStopDowntime = 3.0


def lookup_mocker(mocker_type: str) -> Optional[MockerFn]:
    """The mocker called ``mocker_type``, or None."""
    return mockerList.get(mocker_type)


def get_mocker_list() -> List[str]:
    """The names of the mockers (for a front end to offer)."""
    return list(mockerList)


def boot(net, quit: threading.Event, node_count: int) -> None:
    """Connect ``node_count`` new nodes in a ring and do nothing else."""
    try:
        connect_nodes_in_ring(net, node_count)
    except Exception as e:
        # geth panics here, which kills the whole program; the mocker thread ends instead
        log.error("Could not startup node network for mocker", err=e)


def start_stop(net, quit: threading.Event, node_count: int) -> None:
    """Ring-connect the nodes, then every 10 s stop a random node and start it 3 s later."""
    try:
        nodes = connect_nodes_in_ring(net, node_count)
    except Exception as e:
        log.error("Could not startup node network for mocker", err=e)
        return
    while True:
        if quit.wait(startStopInterval):
            log.info("Terminating simulation loop")
            return
        id = nodes[random.randrange(len(nodes))]
        log.info("stopping node", id=id)
        try:
            net.stop(id)
        except Exception as e:
            log.error("error stopping node", id=id, err=e)
            return

        if quit.wait(startStopDowntime):
            log.info("Terminating simulation loop")
            return

        log.debug("starting node", id=id)
        try:
            net.start(id)
        except Exception as e:
            log.error("error starting node", id=id, err=e)
            return


def probabilistic(net, quit: threading.Event, node_count: int) -> None:
    """Ring-connect the nodes, then stop a random run of them one by one and restart each later."""
    try:
        nodes = connect_nodes_in_ring(net, node_count)
    except Exception as e:
        if not quit.is_set():  # else the error may come from the mocker being stopped
            log.error("Could not startup node network for mocker", err=e)
        return
    restarts: List[threading.Thread] = []
    try:
        while not quit.is_set():
            rand_wait = (random.randrange(5000) + 1000) / 1000.0
            rand1 = random.randrange(max(1, node_count - 1))
            rand2 = random.randrange(max(1, node_count - 1))
            if rand1 < rand2:
                lowid, highid = rand1, rand2
            elif rand1 > rand2:
                highid, lowid = rand1, rand2
            else:
                # departure: mocker-range: the last index, where geth uses 9 (out of range below 10 nodes)
                last = len(nodes) - 1
                if rand1 == 0:
                    rand2 = last
                elif rand1 == last:
                    rand1 = 0
                lowid, highid = rand1, rand2
            if lowid == highid and quit.wait(rand_wait):  # nothing to do this round: geth spins here
                return
            restarts = []
            for i in range(lowid, highid):
                if quit.wait(rand_wait):
                    log.info("Terminating simulation loop")
                    return
                log.debug("node %s shutting down" % nodes[i].hex())
                try:
                    net.stop(nodes[i])
                except Exception:
                    log.error("Error stopping node", node=nodes[i])
                    continue
                t = threading.Thread(target=_restart_later, args=(net, quit, nodes[i], rand_wait),
                                     name="simulations.probabilistic.restart", daemon=True)
                t.start()
                restarts.append(t)
            for t in restarts:  # geth's wg.Wait()
                t.join()
    finally:
        for t in restarts:
            t.join()


def _restart_later(net, quit: threading.Event, id: NodeID, wait: float) -> None:
    # geth's goroutine sleeps, then starts the node even if the mocker was stopped
    # meanwhile; here a stopped mocker ends the wait and leaves the node down.
    if quit.wait(wait):
        return
    try:
        net.start(id)
    except Exception:
        log.error("Error starting node", node=id)


def connect_nodes_in_ring(net, node_count: int) -> List[NodeID]:
    """Create ``node_count`` nodes, start them, connect each to the next (the last to the first)."""
    ids: List[NodeID] = []
    for _ in range(node_count):
        conf = random_node_config()
        try:
            node = net.new_node_with_config(conf)
        except Exception as e:
            log.error("Error creating a node!", err=e)
            raise
        ids.append(node.id())

    for id in ids:
        try:
            net.start(id)
        except Exception as e:
            log.error("Error starting a node!", err=e)
            raise
        log.debug("node %s starting up" % id.hex())
    for i, id in enumerate(ids):
        peer_id = ids[(i + 1) % len(ids)]
        try:
            net.connect(id, peer_id)
        except Exception as e:
            log.error("Error connecting a node to a peer!", err=e)
            raise
    return ids


# the mockers by name (geth's mockerList)
mockerList: Dict[str, MockerFn] = {
    "startStop": start_stop,
    "probabilistic": probabilistic,
    "boot": boot,
}
