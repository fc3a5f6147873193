"""Figures for the simulations (p2p/simulations): big rings on each adapter, and the event stream.

For each adapter (``sim``: every node a Server in this process; ``exec``: every
node a child process) and each size N:
* the time to start N ping-pong nodes (one after the other, as Network.start_all);
* the time to connect them in a ring, from the first admin_addPeer to the N-th
  connection reported up by the nodes' peer events;
* memory per node: the growth of this process's resident memory, plus (exec)
  the resident memory of the children, over N;
* the time to shut the network down.
Then the event stream: events per second that ``GET /events`` delivers to our
HTTP client (server JSON encoding + socket + client decoding), with msg events
produced as fast as the network's feed takes them.

Sizes: ``GETHP2P_BENCH_SIM_SIZES`` (default ``100,500``) for the sim adapter,
``GETHP2P_BENCH_EXEC_SIZES`` (default ``100``; each child is a Python process of
about 40 MB, so 500 needs some 20 GB) for exec, ``GETHP2P_BENCH_SSE_EVENTS``
(default 20000) events for the stream.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time

WAIT = 600.0


def _rss(pid="self") -> int:
    try:
        with open("/proc/%s/statm" % pid) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _sizes(var, default):
    raw = os.environ.get(var, default)
    return [int(x) for x in raw.split(",") if x.strip() and int(x) > 1]


def _network(adapter_name):
    import p2p.simulations.examples.ping_pong  # noqa: F401  (registers ping-pong)
    from p2p.simulations.adapters import types as adapters
    from p2p.simulations.network import Network, NetworkConfig

    base_dir = None
    if adapter_name == "sim":
        from p2p.simulations.adapters.inproc import new_sim_adapter

        adapter = new_sim_adapter({"ping-pong": adapters.serviceFuncs["ping-pong"]})
    else:
        from p2p.simulations.adapters.exec import new_exec_adapter

        base_dir = tempfile.mkdtemp(prefix="bench-sim-")
        adapter = new_exec_adapter(base_dir)
    return Network(adapter, NetworkConfig(default_service="ping-pong")), base_dir


def ring(report, adapter_name, n):
    from p2p.simulations.adapters import types as adapters

    network, base_dir = _network(adapter_name)
    events: "queue.Queue" = queue.Queue()
    sub = network.events().subscribe(events)
    rss0 = _rss()
    try:
        ids = []
        for i in range(n):
            conf = adapters.random_node_config()
            conf.name = "node%03d" % i
            conf.enable_msg_events = False  # the ring's figures, not the message events'
            if adapter_name == "exec":
                # the child binds an ephemeral port and reports it in its enode: a port picked
                # here (geth's assignTCPPort) can be taken by another child before it binds
                conf.port = 0
            ids.append(network.new_node_with_config(conf).id())
        t0 = time.perf_counter()
        for id in ids:
            network.start(id)
        t_start = time.perf_counter() - t0

        t0 = time.perf_counter()
        for i, id in enumerate(ids):
            network.connect(id, ids[(i + 1) % n])
        up = set()
        deadline = time.monotonic() + WAIT
        while len(up) < n:
            ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
            if ev.conn is not None and not ev.control:
                key = frozenset((ev.conn.one, ev.conn.other))
                if ev.conn.up:
                    up.add(key)
                else:
                    up.discard(key)
        t_ring = time.perf_counter() - t0

        mem = _rss() - rss0
        if adapter_name == "exec":
            mem += sum(_rss(node.node.cmd.pid) for node in network.get_nodes() if node.node.cmd is not None)
        report.add("simulations", "%s adapter: start %d nodes" % (adapter_name, n), t_start, "s")
        report.add("simulations", "%s adapter: ring-connect %d nodes" % (adapter_name, n), t_ring, "s")
        report.add("simulations", "%s adapter: memory per node (%d nodes)" % (adapter_name, n),
                   mem / n / 1024 / 1024, "MiB")
    finally:
        sub.unsubscribe()
        t0 = time.perf_counter()
        network.shutdown()
        report.add("simulations", "%s adapter: shutdown %d nodes" % (adapter_name, n), time.perf_counter() - t0, "s")
        if base_dir is not None:
            shutil.rmtree(base_dir, ignore_errors=True)


def sse(report, count):
    """Events per second from the network's feed through GET /events to our client."""
    from p2p.discover.node import NodeID
    from p2p.simulations.http import Client, ListeningServer, Server, SubscribeOpts, maxQueuedEvents
    from p2p.simulations.network import Network, NetworkConfig

    network = Network(None, NetworkConfig())
    server = ListeningServer(Server(network), "127.0.0.1:0")
    events: "queue.Queue" = queue.Queue()
    sub = Client(server.url).subscribe_network(events, SubscribeOpts(filter="*"))
    try:
        a, b = NodeID(b"\x01" * 64), NodeID(b"\x02" * 64)
        # the stream is open once its handler subscribed: one event through it says so
        network.did_send(a, b, "bench", 0)
        events.get(timeout=30)

        # in batches the stream's buffer holds (past maxQueuedEvents it would cut the client off)
        batch = min(count, maxQueuedEvents // 2)
        sent = 0
        t0 = time.perf_counter()
        while sent < count:
            k = min(batch, count - sent)
            t = threading.Thread(target=_produce, args=(network, a, b, k), name="bench.sse.produce")
            t.start()
            for _ in range(k):
                events.get(timeout=60)
            t.join()
            sent += k
        dt = time.perf_counter() - t0
        report.add("simulations", "GET /events: msg events to our client", count / dt, "events/s")
    finally:
        sub.unsubscribe()
        server.close()
        network.shutdown()


def _produce(network, a, b, k):
    for i in range(k):
        network.did_send(a, b, "bench", i % 16)


def run(report):
    for n in _sizes("GETHP2P_BENCH_SIM_SIZES", "100,500"):
        ring(report, "sim", n)
    for n in _sizes("GETHP2P_BENCH_EXEC_SIZES", "100"):
        ring(report, "exec", n)
    sse(report, int(os.environ.get("GETHP2P_BENCH_SSE_EVENTS", "20000")))
