"""p2psim: a command-line client of the simulation HTTP API (geth's cmd/p2psim).

A two-node network, the first connected to the second::

    $ p2psim node create --name node01
    Created node01
    $ p2psim node start node01
    Started node01
    $ p2psim node create --name node02
    Created node02
    $ p2psim node start node02
    Started node02
    $ p2psim node connect node01 node02
    Connected node01 to node02

The API URL is ``--api`` or ``$P2PSIM_API_URL`` (default http://localhost:8888).
Commands: ``show``, ``events [--current] [--filter F]``, ``snapshot`` (to stdout),
``load`` (from stdin), ``node [list|create|show|start|stop|connect|disconnect|rpc]``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
from typing import List

from p2p import crypto, version_string
from p2p.discover.node import pubkey_id
from p2p.node import rpc
from p2p.server import NodeInfo
from p2p.simulations.adapters.types import random_node_config
from p2p.simulations.http import Client, ClientError, Snapshot, SubscribeOpts

client: Client = None  # type: ignore[assignment]  # set by main, as geth's app.Before does


def main(argv=None, out=None) -> int:
    out = out or sys.stdout
    app = argparse.ArgumentParser(prog="p2psim", description="devp2p simulation command-line client")
    app.add_argument("--api", default=os.environ.get("P2PSIM_API_URL", "http://localhost:8888"),
                     help="simulation API URL [$P2PSIM_API_URL]")
    app.add_argument("--version", action="version", version=version_string("p2psim"))
    cmds = app.add_subparsers(dest="command", metavar="COMMAND")

    c = cmds.add_parser("show", help="show network information")
    c.set_defaults(action=show_network)
    c = cmds.add_parser("events", help="stream network events")
    c.add_argument("--current", action="store_true", help="get existing nodes and conns first")
    c.add_argument("--filter", default="", help="message filter")
    c.set_defaults(action=stream_network)
    c = cmds.add_parser("snapshot", help="create a network snapshot to stdout")
    c.set_defaults(action=create_snapshot)
    c = cmds.add_parser("load", help="load a network snapshot from stdin")
    c.set_defaults(action=load_snapshot)

    node = cmds.add_parser("node", help="manage simulation nodes")
    node.set_defaults(action=list_nodes)
    sub = node.add_subparsers(dest="node_command", metavar="NODE_COMMAND")
    c = sub.add_parser("list", help="list nodes")
    c.set_defaults(action=list_nodes)
    c = sub.add_parser("create", help="create a node")
    c.add_argument("--name", default="", help="node name")
    c.add_argument("--services", default="", help="node services (comma separated)")
    c.add_argument("--key", default="", help="node private key (hex encoded)")
    c.set_defaults(action=create_node)
    for name, help_, fn, args in (("show", "show node information", show_node, ["node"]),
                                  ("start", "start a node", start_node, ["node"]),
                                  ("stop", "stop a node", stop_node, ["node"]),
                                  ("connect", "connect a node to a peer node", connect_node, ["node", "peer"]),
                                  ("disconnect", "disconnect a node from a peer node", disconnect_node,
                                   ["node", "peer"])):
        c = sub.add_parser(name, help=help_)
        for a in args:
            c.add_argument(a)
        c.set_defaults(action=fn)
    c = sub.add_parser("rpc", help="call a node RPC method")
    c.add_argument("node")
    c.add_argument("method")
    c.add_argument("args", nargs="*")
    c.add_argument("--subscribe", action="store_true", help="method is a subscription")
    c.set_defaults(action=rpc_node)

    ctx = app.parse_args(argv)
    if getattr(ctx, "action", None) is None:
        app.print_help(out)
        return 0
    global client
    try:
        client = Client(ctx.api)
        ctx.action(ctx, out)
    except (ClientError, rpc.RPCError, rpc.ClientQuitError, OSError, ValueError, TimeoutError) as err:
        print(err, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def show_network(ctx, out) -> None:
    network = client.get_network()
    _table(out, [["NODES", str(len(network.nodes))], ["CONNS", str(len(network.conns))]])


def stream_network(ctx, out) -> None:
    """Print every network event as one JSON line, until the stream ends (or Ctrl-C)."""
    events: "queue.Queue" = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts(current=ctx.current, filter=ctx.filter))
    try:
        while True:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                if sub.err().closed:  # the stream ended
                    err = sub.err().get()
                    if err is not None:
                        raise OSError(str(err))
                    return
                continue
            out.write(json.dumps(event.to_dict()) + "\n")
            out.flush()
    finally:
        sub.unsubscribe()


def create_snapshot(ctx, out) -> None:
    snap = client.create_snapshot()
    out.write(json.dumps(snap.to_dict()) + "\n")


def load_snapshot(ctx, out) -> None:
    try:
        snap = Snapshot.from_dict(json.load(sys.stdin))
    except json.JSONDecodeError as e:
        raise ValueError("invalid snapshot JSON: %s" % e) from None
    client.load_snapshot(snap)


def list_nodes(ctx, out) -> None:
    nodes = client.get_nodes()
    rows = [["NAME", "PROTOCOLS", "ID"]]
    for node in nodes:
        rows.append([node.name, ",".join(protocol_list(node)), node.id])
    _table(out, rows)


def protocol_list(node: NodeInfo) -> List[str]:
    return list(node.protocols)


def create_node(ctx, out) -> None:
    config = random_node_config()
    # departure: p2psim-name: the random config's name is kept when --name is not given (geth sets "")
    if ctx.name:
        config.name = ctx.name
    if ctx.key:
        try:
            priv_key = crypto.hex_to_ecdsa(ctx.key)
        except Exception as e:
            raise ValueError("invalid --key: %s" % e) from None
        config.id = pubkey_id(priv_key.public_key)
        config.private_key = priv_key
    if ctx.services:
        config.services = ctx.services.split(",")
    node = client.create_node(config)
    print("Created", node.name, file=out)


def show_node(ctx, out) -> None:
    node = client.get_node(ctx.node)
    _table(out, [["NAME", node.name], ["PROTOCOLS", ",".join(protocol_list(node))],
                 ["ID", node.id], ["ENODE", node.enode]])
    for name, proto in node.protocols.items():
        out.write("\n--- PROTOCOL INFO: %s\n%s\n---\n" % (name, json.dumps(proto)))


def start_node(ctx, out) -> None:
    client.start_node(ctx.node)
    print("Started", ctx.node, file=out)


def stop_node(ctx, out) -> None:
    client.stop_node(ctx.node)
    print("Stopped", ctx.node, file=out)


def connect_node(ctx, out) -> None:
    client.connect_node(ctx.node, ctx.peer)
    print("Connected", ctx.node, "to", ctx.peer, file=out)


def disconnect_node(ctx, out) -> None:
    client.disconnect_node(ctx.node, ctx.peer)
    print("Disconnected", ctx.node, "from", ctx.peer, file=out)


def rpc_node(ctx, out) -> None:
    """Call ``method`` with the string ``args`` (or subscribe) on the node's RPC."""
    rpc_client = client.rpc_client(ctx.node)
    try:
        # departure: p2psim-rpc-args: the arguments after the method are passed (geth skips the first one)
        if ctx.subscribe:
            rpc_subscribe(rpc_client, out, ctx.method, *ctx.args)
            return
        result = rpc_client.call(ctx.method, *ctx.args)
        out.write(json.dumps(result) + "\n")
    finally:
        rpc_client.close()


def rpc_subscribe(rpc_client, out, method: str, *args: str) -> None:
    """Print each notification of ``<namespace>_<name>`` as a JSON line until it ends."""
    namespace, _, name = method.partition("_")
    if not name:
        raise ValueError("subscription method must be <namespace>_<name>, got %r" % method)
    ch: "queue.Queue" = queue.Queue()
    sub = rpc_client.subscribe(namespace, ch, name, *args)
    try:
        while True:
            try:
                v = ch.get(timeout=0.5)
            except queue.Empty:
                if sub.err().closed:
                    err = sub.err().get()
                    if err is not None:
                        raise OSError(str(err))
                    return
                continue
            out.write(json.dumps(v) + "\n")
            out.flush()
    finally:
        sub.unsubscribe()


def _table(out, rows) -> None:
    # geth's tabwriter (minwidth 1, padding 2)
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.write("  ".join(cells).rstrip() + "\n")


if __name__ == "__main__":
    sys.exit(main())
