"""p2pnode: a devp2p node running the demo protocol "chat" version 1.

    p2pnode --addr 127.0.0.1:30303 --nodiscover --static enode://...@127.0.0.1:30304

    p2pnode --addr 127.0.0.1:30303 --v5disc --bootnodesv5 enode://...@127.0.0.1:30301 --topic chat

The first line on stdout is this node's enode URL. After it, one line per event::

    peer add <id prefix> <name> <address>
    peer drop <id prefix> <reason>
    chat <id prefix>: <text>
    topic found <id prefix> <address>

With ``--v5disc`` the node also runs topic discovery (discv5) on its UDP port; with
``--topic NAME`` it registers NAME there and searches it, printing each node found
once (``<address>`` is its discovery endpoint).

Every line typed on stdin is sent to all connected peers. SIGINT or SIGTERM stops
the node cleanly (peers are told "client quitting") with exit status 0. Bad
flags print one error line and exit with status 2.

The chat protocol (``chat_protocol`` / ``Chat``) has one message, code 0, whose
payload is the RLP list ``[text]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from p2p import crypto, version_string
from p2p.log import get_logger, set_verbosity
from p2p.message import send
from p2p.netutil import addr_str
from p2p.peer_error import errInvalidMsgCode, new_peer_error
from p2p.protocol import Protocol

log = get_logger("p2p.cmd.p2pnode")

CHAT_NAME = "chat"
CHAT_VERSION = 1
CHAT_LENGTH = 1
chatMsg = 0
# Longest chat message accepted (bytes of payload).
CHAT_MAX_MSG_SIZE = 64 * 1024

ID_PREFIX = 8  # hex characters of a node ID shown in event lines


class Chat:
    """The chat protocol: keeps the live peers' message writers for broadcast.

    ``on_message(peer, text)`` is called for every message received;
    ``on_peer(peer)`` (optional) when the protocol starts with a peer;
    ``greet`` (optional) is sent to every peer as soon as chat starts.
    """

    def __init__(self, on_message, greet=None, on_peer=None):
        self.on_message = on_message
        self.greet = greet
        self.on_peer = on_peer
        self._lock = threading.Lock()
        self._rws = {}  # peer -> MsgReadWriter
        self.protocol = Protocol(name=CHAT_NAME, version=CHAT_VERSION, length=CHAT_LENGTH, run=self.run)

    def run(self, peer, rw):
        with self._lock:
            self._rws[peer] = rw
        try:
            if self.on_peer is not None:
                self.on_peer(peer)
            if self.greet:
                send(rw, chatMsg, [self.greet.encode("utf-8")])
            while True:
                msg = rw.read_msg()
                if msg.code != chatMsg:
                    msg.discard()
                    raise new_peer_error(errInvalidMsgCode, "%d", msg.code)
                if msg.size > CHAT_MAX_MSG_SIZE:
                    msg.discard()
                    raise new_peer_error(errInvalidMsgCode, "message too big (%d bytes)", msg.size)
                self.on_message(peer, decode_chat(msg))
        finally:
            with self._lock:
                self._rws.pop(peer, None)

    def broadcast(self, text: str) -> int:
        """Send text to every peer running chat; returns how many got it."""
        with self._lock:
            rws = list(self._rws.values())
        payload = [text.encode("utf-8")]
        sent = 0
        for rw in rws:
            try:
                send(rw, chatMsg, payload)
                sent += 1
            except Exception as err:  # that peer is going away; the others still get it
                log.debug("Chat send failed", err=err)
        return sent


def decode_chat(msg) -> str:
    """The text of a chat message (payload ``[text]``); raises PeerError if malformed."""
    items = msg.decode()
    if not isinstance(items, list) or not items or not isinstance(items[0], bytes):
        raise new_peer_error(errInvalidMsgCode, "chat payload must be [text]")
    return items[0].decode("utf-8", "replace")


def chat_protocol(on_message, greet=None, on_peer=None) -> Protocol:
    """The chat/1 Protocol calling ``on_message(peer, text)`` for each message."""
    return Chat(on_message, greet, on_peer).protocol


# ---------------------------------------------------------------------------
# command line


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(2)


class UsageError(Exception):
    pass


def _parser():
    p = _ArgParser(prog="p2pnode", description="devp2p node with the chat/1 demo protocol")
    p.add_argument("--version", action="version", version=version_string("p2pnode"))
    p.add_argument("--nodekey", metavar="FILE", help="private key file (hex)")
    p.add_argument("--nodekeyhex", metavar="HEX", help="private key as hex")
    p.add_argument("--addr", default=":30303", metavar="HOST:PORT", help="listen address (TCP and UDP)")
    p.add_argument("--bootnodes", default="", metavar="URLS", help="comma-separated enode URLs for discovery")
    p.add_argument("--static", default="", metavar="URLS", help="comma-separated enode URLs to keep connected")
    p.add_argument("--trusted", default="", metavar="URLS", help="comma-separated enode URLs always let in")
    p.add_argument("--maxpeers", type=int, default=25, metavar="N", help="maximum number of peers")
    p.add_argument("--nodiscover", action="store_true", help="disable discovery (v4)")
    p.add_argument("--v5disc", action="store_true", help="run topic discovery (discv5) too")
    p.add_argument("--bootnodesv5", default="", metavar="URLS",
                   help="comma-separated discv5 node URLs to join topic discovery")
    p.add_argument("--topic", default="", metavar="NAME",
                   help="with --v5disc: register and search this topic, print the nodes found")
    p.add_argument("--nodial", action="store_true", help="never dial out")
    p.add_argument("--nat", default="none", metavar="SPEC", help="NAT port mapping: none|any|upnp|pmp|extip:IP")
    p.add_argument("--netrestrict", default="", metavar="CIDRS", help="comma-separated allowed networks")
    p.add_argument("--datadir", default="", metavar="DIR", help="keep the node database in DIR")
    p.add_argument("--name", default="p2pnode", help="node name sent in the hello")
    p.add_argument("--greet", default="", metavar="TEXT", help="text sent to every peer when chat starts")
    p.add_argument("--verbosity", type=int, default=2, choices=range(0, 6), metavar="0..5",
                   help="log level on stderr (0=crit .. 5=trace)")
    return p


def _nodes(urls: str, what: str, parse_node=None):
    if parse_node is None:
        from p2p.discover.node import parse_node

    out = []
    for u in urls.split(","):
        u = u.strip()
        if not u:
            continue
        try:
            out.append(parse_node(u))
        except Exception as err:
            raise UsageError("invalid %s URL %r: %s" % (what, u, err)) from None
    return out


def build_config(args):
    """Turn parsed flags into a server.Config; raises UsageError on bad values."""
    from p2p.server import Config, split_host_port

    if args.nodekey and args.nodekeyhex:
        raise UsageError("--nodekey and --nodekeyhex are mutually exclusive")
    try:
        if args.nodekey:
            key = crypto.load_ecdsa(args.nodekey)
        elif args.nodekeyhex:
            key = crypto.hex_to_ecdsa(args.nodekeyhex)
        else:
            key = crypto.generate_key()
    except Exception as err:
        raise UsageError("bad node key: %s" % err) from None
    try:
        split_host_port(args.addr)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.maxpeers < 0:
        raise UsageError("--maxpeers must be >= 0")
    cfg = Config(
        private_key=key,
        max_peers=args.maxpeers,
        name=args.name,
        listen_addr=args.addr,
        no_discovery=args.nodiscover,
        no_dial=args.nodial,
        bootstrap_nodes=_nodes(args.bootnodes, "bootnode"),
        static_nodes=_nodes(args.static, "static node"),
        trusted_nodes=_nodes(args.trusted, "trusted node"),
        discovery_v5=args.v5disc,
    )
    if args.bootnodesv5 or args.topic:
        if not args.v5disc:
            raise UsageError("--bootnodesv5 and --topic need --v5disc")
        from p2p.discv5.node import parse_node as parse_v5_node

        cfg.bootstrap_nodes_v5 = _nodes(args.bootnodesv5, "v5 bootnode", parse_v5_node)
    if args.netrestrict:
        from p2p.netutil.net import Netlist

        nl = Netlist()
        try:
            for cidr in args.netrestrict.split(","):
                if cidr.strip():
                    nl.add(cidr.strip())
        except Exception as err:
            raise UsageError("invalid --netrestrict: %s" % err) from None
        cfg.net_restrict = nl
    if args.nat and args.nat.lower() != "none":
        from p2p.nat import nat

        try:
            cfg.nat = nat.parse(args.nat)
        except Exception as err:
            raise UsageError("invalid --nat: %s" % err) from None
    if args.datadir:
        cfg.node_database = os.path.join(args.datadir, "nodes")
    return cfg


class _Printer:
    """Writes whole lines to stdout, flushed, from any thread."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def line(self, s):
        with self.lock:
            try:
                self.out.write(s + "\n")
                self.out.flush()
            except (OSError, ValueError):  # stdout closed: keep running
                pass


def _short(id) -> str:
    return bytes(id).hex()[:ID_PREFIX]


#: First search period of --topic (geth's light client starts its server search at 1 s).
TOPIC_SEARCH_PERIOD = 1.0


def _run_topic(net, topic, out):
    """Register and search ``topic`` on the discv5 Network; returns the function that stops it.

    Each node found is printed once as ``topic found <id prefix> <address>``.
    """
    from p2p.discv5 import mclock

    stop_reg = net.clock.event()
    set_period = net.clock.queue()
    found = net.clock.queue()
    set_period.put(int(TOPIC_SEARCH_PERIOD * mclock.Second))
    seen = set()

    def print_found():
        while True:
            n = found.get()
            if n is None:
                return
            if n.id not in seen:
                seen.add(n.id)
                out.line("topic found %s %s" % (_short(n.id), addr_str(n.addr())))

    threads = [
        threading.Thread(target=net.register_topic, args=(topic, stop_reg), name="p2pnode.registerTopic",
                         daemon=True),
        threading.Thread(target=net.search_topic, args=(topic, set_period, found, None),
                         name="p2pnode.searchTopic", daemon=True),
        threading.Thread(target=print_found, name="p2pnode.topicFound", daemon=True),
    ]
    for t in threads:
        t.start()

    def stop():
        stop_reg.set()
        set_period.put(None)  # the last request: the search ends
        threads[0].join(5.0)
        threads[1].join(5.0)
        found.put(None)
        threads[2].join(5.0)

    return stop


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        set_verbosity(args.verbosity)
        cfg = build_config(args)
    except (UsageError, ValueError) as err:
        sys.stderr.write("p2pnode: error: %s\n" % err)
        return 2

    from p2p.peer import PeerEventTypeDrop
    from p2p.server import Server
    import queue

    out = _Printer(sys.stdout)

    def on_peer(peer):
        out.line("peer add %s %s %s" % (_short(peer.id()), peer.name() or "-", addr_str(peer.remote_addr())))

    def on_message(peer, text):
        out.line("chat %s: %s" % (_short(peer.id()), text.replace("\n", " ")))

    chat = Chat(on_message, greet=args.greet or None, on_peer=on_peer)
    cfg.protocols = [chat.protocol]
    srv = Server(cfg)

    # SIGINT/SIGTERM are blocked before any thread starts (threads inherit the mask)
    # and taken by sigwait in this thread. A Python signal handler would not do:
    # the kernel may deliver the signal to any thread, and then a main thread
    # blocked in a lock wait is never woken to run the handler.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        srv.start()
    except Exception as err:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        sys.stderr.write("p2pnode: error: %s\n" % err)
        return 1

    events = queue.Queue()
    sub = srv.subscribe_events(events)

    def event_loop():
        while True:
            ev = events.get()
            if ev is None:
                return
            if ev.type == PeerEventTypeDrop:
                out.line("peer drop %s %s" % (_short(ev.peer), ev.error))

    ev_thread = threading.Thread(target=event_loop, name="p2pnode.events", daemon=True)
    ev_thread.start()

    def stdin_loop():
        # Blocks in readline; daemon, so it never holds up exit.
        for line in sys.stdin:
            text = line.rstrip("\n")
            if text:
                chat.broadcast(text)

    threading.Thread(target=stdin_loop, name="p2pnode.stdin", daemon=True).start()

    out.line(str(srv.self()))
    stop_topic = None
    if args.topic:
        stop_topic = _run_topic(srv.discv5, args.topic, out)
    try:
        signal.sigwait(stop_signals)
    finally:
        if stop_topic is not None:
            stop_topic()
        srv.stop()
        sub.unsubscribe()
        events.put(None)
        ev_thread.join(5.0)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return 0


if __name__ == "__main__":
    sys.exit(main())
