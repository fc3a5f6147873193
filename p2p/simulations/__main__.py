"""p2psim-server: a simulation network served over geth's HTTP API (and the web view).

    p2psim-server --addr 127.0.0.1:8888 [--adapter sim|exec] [--services ping-pong] [--nodes N]

(also ``python -m p2p.simulations``). ``--nodes N`` creates N nodes named
node01..nodeN, starts them and connects them in a ring, so there is
something to look at. Drive it with ``p2psim`` (ours or geth's) or open the
URL in a browser. Ctrl-C (or SIGTERM) stops every node and exits.

This is the ``main`` of geth's p2p/simulations/examples/ping-pong.go: there,
a fixed program; here, a command whose adapter and services are flags.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading

from p2p import version_string
from p2p.log import get_logger, set_verbosity
from p2p.simulations.adapters import types as adapters
from p2p.simulations.http import ListeningServer, Server
from p2p.simulations.network import Network, NetworkConfig

log = get_logger("p2psim-server")


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def build_network(adapter_name: str, services: list):
    """The network and, for the exec adapter, the directory its nodes live in (removed on exit)."""
    import p2p.simulations.examples.ping_pong  # noqa: F401  (registers the ping-pong service)

    unknown = [s for s in services if s not in adapters.serviceFuncs]
    if unknown:
        raise ValueError("unknown service(s) %s; known: %s" % (",".join(unknown), ",".join(sorted(adapters.serviceFuncs))))
    base_dir = None
    if adapter_name == "sim":
        from p2p.simulations.adapters.inproc import new_sim_adapter

        adapter = new_sim_adapter({name: adapters.serviceFuncs[name] for name in services})
    elif adapter_name == "exec":
        from p2p.simulations.adapters.exec import new_exec_adapter

        base_dir = tempfile.mkdtemp(prefix="p2p-sim-")
        adapter = new_exec_adapter(base_dir)
    else:
        raise ValueError("unknown adapter %r (sim or exec)" % adapter_name)
    return Network(adapter, NetworkConfig(id="p2psim", default_service=services[0])), base_dir


def start_ring(network: Network, n: int) -> None:
    """Create node01..nodeN, start them and connect each to the next, the last to the first."""
    ids = []
    for i in range(n):
        conf = adapters.random_node_config()
        conf.name = "node%02d" % (i + 1)
        ids.append(network.new_node_with_config(conf).id())
    for id in ids:
        network.start(id)
    if n > 1:
        for i, id in enumerate(ids):
            if n == 2 and i == 1:
                break  # two nodes: one connection
            network.connect(id, ids[(i + 1) % n])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="p2psim-server", description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", default="127.0.0.1:8888", help="where the HTTP API listens (host:port)")
    p.add_argument("--adapter", default="sim", choices=["sim", "exec"],
                   help="sim: every node in this process; exec: every node its own process")
    p.add_argument("--services", default="ping-pong", help="comma-separated services of each node")
    p.add_argument("--nodes", type=int, default=0, help="create, start and ring-connect this many nodes")
    p.add_argument("--allow-non-loopback", action="store_true",
                   help="listen on an address that is not loopback (the API has no authentication)")
    p.add_argument("--verbosity", type=int, default=3, help="log level 0..5 (geth's)")
    p.add_argument("--version", action="version", version=version_string("p2psim-server"))
    args = p.parse_args(argv)
    set_verbosity(args.verbosity)

    host = args.addr.rpartition(":")[0].strip("[]")
    if not _loopback(host) and not args.allow_non_loopback:
        p.error("--addr %s is not a loopback address (pass --allow-non-loopback to mean it)" % args.addr)
    services = [s for s in args.services.split(",") if s]
    if not services:
        p.error("--services needs at least one service")
    try:
        network, base_dir = build_network(args.adapter, services)
    except ValueError as e:
        p.error(str(e))

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    http_server = None
    try:
        try:
            http_server = ListeningServer(Server(network), args.addr)
        except OSError as e:
            print("p2psim-server: cannot listen on %s: %s" % (args.addr, e), file=sys.stderr)
            return 1
        if args.nodes:
            start_ring(network, args.nodes)
        print("p2psim-server: %s adapter, services %s, %d nodes: %s (open it in a browser, or "
              "P2PSIM_API_URL=%s p2psim show)" % (args.adapter, ",".join(services), len(network.nodes),
                                                  http_server.url, http_server.url), flush=True)
        while not stop.wait(3600):
            pass
    finally:
        if http_server is not None:
            http_server.close()
        network.shutdown()
        if base_dir is not None:
            shutil.rmtree(base_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
