"""A small devp2p network on 127.0.0.1 that you can watch converge.

``make demo`` (``python -m p2p.cmd.demo``) starts N nodes in this process (16 by
default; node 0 is the bootnode everybody else starts from). Every node is a
full :class:`p2p.server.Server`: discovery v4 on UDP, RLPx on TCP, and the
``chat/1`` protocol of ``p2pnode``. While the network converges it prints one
line a second; once every node has peers, one node sends a chat line and the
demo counts who received it. It then writes two pictures to ``demo-output/``:

* ``table.png`` -- one node's Kademlia table: live entries and replacements
  per bucket, by log distance;
* ``peers.png`` -- the peer graph of the whole network.

It stops every node, checks that no thread is left behind, prints a one-line
summary and exits 0; a network that does not converge in time exits 1 and
says what is missing. Nothing leaves the loopback interface.

``--v5`` (``make demo-v5``) shows topic discovery instead: N discovery v5 nodes
(node 0 is their bootnode), ``--registrants`` of them register topic "chat"
and every node searches it. Progress lines show the table sizes and how many
registrants the searchers have found; registration waits for geth's one-minute
ticket, so expect one to two minutes. The picture ``topic.png`` shows who found
whom.
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import sys
import threading
import time

from p2p import crypto, metrics, version_string
from p2p.cmd.p2pnode import Chat
from p2p.discover import ntp
from p2p.discover.table import nBuckets
from p2p.log import set_verbosity
from p2p.server import Config, Server

# Kademlia distances that matter: IDs are hashed to 256 bits, and with few
# nodes almost everybody sits in the top buckets. Bucket i holds log distances
# <= 256 - nBuckets + 1 + i (the first bucket collects everything closer).
_FIRST_BUCKET_DIST = 256 - nBuckets + 1


class DemoNode:
    """One Server with the chat protocol; remembers the chat lines it received."""

    def __init__(self, index: int, bootnodes, max_peers: int):
        self.index = index
        self.key = crypto.generate_key()
        self.received = queue.Queue()
        self.chat = Chat(on_message=lambda peer, text: self.received.put((peer.id(), text)))
        self.server = Server(Config(
            private_key=self.key,
            name="demo-node-%02d" % index,
            max_peers=max_peers,
            listen_addr="127.0.0.1:0",
            bootstrap_nodes=list(bootnodes),
            protocols=[self.chat.protocol],
        ))

    def start(self):
        self.server.start()

    def table_size(self) -> int:
        tab = self.server.ntab
        return tab.len() if tab is not None else 0


def _packets_sent() -> int:
    m = metrics.registry.get("discover/egress/packets")
    return m.count() if m is not None else 0


def _progress(nodes, t0):
    sizes = [n.table_size() for n in nodes]
    peers = [n.server.peer_count() for n in nodes]
    return {
        "elapsed": time.monotonic() - t0,
        "up": sum(1 for n in nodes if n.server.running),
        "mean_table": sum(sizes) / len(sizes),
        "mean_peers": sum(peers) / len(peers),
        "min_peers": min(peers),
        "packets": _packets_sent(),
    }


def _print_progress(p, total, out):
    out.write("[%5.1fs] nodes up %d/%d  table mean %5.1f  peers mean %4.1f min %d  packets sent %d\n" % (
        p["elapsed"], p["up"], total, p["mean_table"], p["mean_peers"], p["min_peers"], p["packets"]))
    out.flush()


def plot_table(node: DemoNode, path: str) -> None:
    """Bar chart of one node's buckets: live entries and replacements per log distance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = node.server.ntab
    with tab.mutex:
        entries = [len(b.entries) for b in tab.buckets]
        repl = [len(b.replacements) for b in tab.buckets]
    dists = [_FIRST_BUCKET_DIST + i for i in range(len(entries))]
    labels = ["<=%d" % dists[0]] + [str(d) for d in dists[1:]]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(range(len(entries)), entries, label="entries (live)", color="#3a7bd5")
    ax.bar(range(len(entries)), repl, bottom=entries, label="replacements", color="#f0a04b")
    ax.axhline(16, color="grey", linestyle=":", linewidth=1, label="bucket size (16)")
    ax.set_xticks(range(len(entries)))
    ax.set_xticklabels(labels, rotation=45)
    ax.set_xlabel("log distance from %s… (bucket)" % node.server.self().id.hex()[:8])
    ax.set_ylabel("nodes")
    ax.set_title("Kademlia table of %s: %d entries, %d replacements" % (
        node.server.name, sum(entries), sum(repl)))
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_peers(nodes, path: str) -> None:
    """The peer graph: nodes on a circle, one line per RLPx connection."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(nodes)
    pos = {}
    by_id = {}
    for i, node in enumerate(nodes):
        a = 2 * math.pi * i / n
        pos[i] = (math.cos(a), math.sin(a))
        by_id[bytes(node.server.self().id)] = i
    edges = set()
    for i, node in enumerate(nodes):
        for p in node.server.peers():
            j = by_id.get(bytes(p.id()))
            if j is not None:
                edges.add((min(i, j), max(i, j)))
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    for i, j in sorted(edges):
        (x1, y1), (x2, y2) = pos[i], pos[j]
        ax.plot([x1, x2], [y1, y2], color="#9aa7b8", linewidth=0.8, zorder=1)
    xs = [pos[i][0] for i in range(n)]
    ys = [pos[i][1] for i in range(n)]
    colors = ["#d1495b" if i == 0 else "#3a7bd5" for i in range(n)]
    ax.scatter(xs, ys, s=260, c=colors, zorder=2)
    for i in range(n):
        ax.annotate(str(i), pos[i], ha="center", va="center", color="white", fontsize=8, zorder=3)
    ax.set_title("Peer graph: %d nodes, %d connections (node 0 = bootnode)" % (n, len(edges)))
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(n_nodes: int = 16, timeout: float = 40.0, out_dir: str = "demo-output", out=sys.stdout,
        max_peers: int = 10, plots: bool = True) -> int:
    if n_nodes < 2:
        out.write("demo: need at least 2 nodes\n")
        return 2
    metrics_was = metrics.Enabled
    metrics.Enabled = True  # count discovery packets for the progress lines
    # Discovery checks the clock against pool.ntp.org after many timeouts; the demo
    # stays on loopback, so point that check at 127.0.0.1 (where nothing answers).
    ntp_was = ntp.ntpPool
    ntp.ntpPool = "127.0.0.1"
    try:
        return _run(n_nodes, timeout, out_dir, out, max_peers, plots)
    finally:
        metrics.Enabled = metrics_was
        ntp.ntpPool = ntp_was


def _run(n_nodes, timeout, out_dir, out, max_peers, plots) -> int:
    threads_before = set(threading.enumerate())
    t0 = time.monotonic()
    boot = DemoNode(0, [], max_peers)
    boot.start()
    nodes = [boot]
    bootnode = boot.server.self()
    out.write("bootnode %s\n" % bootnode)
    try:
        for i in range(1, n_nodes):
            node = DemoNode(i, [bootnode], max_peers)
            node.start()
            nodes.append(node)
        # Converge: every node has at least one peer. One progress line a second.
        stop = threading.Event()
        deadline = t0 + timeout
        converged = False
        while True:
            p = _progress(nodes, t0)
            _print_progress(p, n_nodes, out)
            if p["min_peers"] > 0 and p["up"] == n_nodes:
                converged = True
                break
            if time.monotonic() >= deadline:
                break
            stop.wait(1.0)  # the once-a-second progress tick
        if not converged:
            lonely = [n.server.name for n in nodes if n.server.peer_count() == 0]
            out.write("demo: FAILED to converge in %.0fs: %d of %d nodes have no peers (%s)\n" % (
                timeout, len(lonely), n_nodes, ", ".join(lonely[:8])))
            return 1
        # One chat line from the last node to its peers.
        sender = nodes[-1]
        text = "hello from %s" % sender.server.name
        sent = sender.chat.broadcast(text)
        got = 0
        # Wait (bounded) for each receiver the sender reached.
        receivers = {bytes(p.id()) for p in sender.server.peers()}
        wait_until = time.monotonic() + 5.0
        for node in nodes[:-1]:
            if bytes(node.server.self().id) not in receivers:
                continue
            try:
                _, msg = node.received.get(timeout=max(0.0, wait_until - time.monotonic()))
                if msg == text:
                    got += 1
            except queue.Empty:
                pass
        out.write("chat: %s sent %r to %d peers, %d received it\n" % (sender.server.name, text, sent, got))
        if plots:
            os.makedirs(out_dir, exist_ok=True)
            plot_table(nodes[n_nodes // 2], os.path.join(out_dir, "table.png"))
            plot_peers(nodes, os.path.join(out_dir, "peers.png"))
            out.write("pictures: %s, %s\n" % (os.path.join(out_dir, "table.png"), os.path.join(out_dir, "peers.png")))
        final = _progress(nodes, t0)
        edges = sum(n.server.peer_count() for n in nodes) // 2
    finally:
        for node in nodes:
            node.server.stop()
    for t in [t for t in threading.enumerate() if t not in threads_before]:
        t.join(5.0)
    left = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    if left:
        out.write("demo: threads still running after stop: %s\n" % ", ".join(sorted(left)))
        return 1
    ok = got == sent and sent > 0
    out.write("demo %s: %d nodes converged in %.1fs, %d connections, mean table %.1f, chat %d/%d, %d discovery packets, all threads stopped\n" % (
        "ok" if ok else "FAILED", n_nodes, final["elapsed"], edges, final["mean_table"], got, sent, final["packets"]))
    return 0 if ok else 1


class V5Node:
    """One discovery v5 Network on its own UDP socket, searching (and maybe registering) a topic."""

    def __init__(self, index: int, bootnode, topic: str, register: bool):
        from p2p.discover.udp import UDPConn
        from p2p.discv5 import mclock
        from p2p.discv5.udp import listen_udp

        self.index = index
        self.topic = topic
        self.register = register
        conn = UDPConn.listen("127.0.0.1", 0)
        self.net = listen_udp(crypto.generate_key(), conn, conn.local_addr(), "<no database>")
        if bootnode is not None:
            self.net.set_fallback_nodes([bootnode])
        self.found = {}  # node ID -> seconds after the start when first found
        self._lock = threading.Lock()
        self._stop_reg = self.net.clock.event()
        self._period = self.net.clock.queue()
        self._found_q = self.net.clock.queue()
        self._threads = []
        self._mclock = mclock

    def start(self, t0: float, period: float = 0.1):
        """Register (if asked) and search the topic; geth's light client searches every 100 ms at first."""
        self._period.put(int(period * self._mclock.Second))
        targets = [(self.net.search_topic, (self.topic, self._period, self._found_q, None)),
                   (self._collect, (t0,))]
        if self.register:
            targets.append((self.net.register_topic, (self.topic, self._stop_reg)))
        for fn, args in targets:
            t = threading.Thread(target=fn, args=args, name="demo.v5", daemon=True)
            t.start()
            self._threads.append(t)

    def _collect(self, t0):
        while True:
            n = self._found_q.get()
            if n is None:
                return
            with self._lock:
                self.found.setdefault(bytes(n.id), time.monotonic() - t0)

    def found_ids(self):
        with self._lock:
            return dict(self.found)

    def stop(self):
        self._stop_reg.set()
        self._period.put(None)
        self.net.close()
        self._found_q.put(None)
        for t in self._threads:
            t.join(5.0)


def plot_topic(nodes, registrants, path: str) -> None:
    """Nodes on a circle (registrants in red), one line from each searcher to each registrant it found."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(nodes)
    pos = {i: (math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)) for i in range(n)}
    by_id = {bytes(node.net.tab.self.id): i for i, node in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    lines = 0
    for i, node in enumerate(nodes):
        for nid in node.found_ids():
            j = by_id.get(nid)
            if j is not None and j != i:
                (x1, y1), (x2, y2) = pos[i], pos[j]
                ax.plot([x1, x2], [y1, y2], color="#9aa7b8", linewidth=0.7, zorder=1)
                lines += 1
    colors = ["#d1495b" if bytes(nd.net.tab.self.id) in registrants else
              ("#444444" if i == 0 else "#3a7bd5") for i, nd in enumerate(nodes)]
    ax.scatter([pos[i][0] for i in range(n)], [pos[i][1] for i in range(n)], s=260, c=colors, zorder=2)
    for i in range(n):
        ax.annotate(str(i), pos[i], ha="center", va="center", color="white", fontsize=8, zorder=3)
    ax.set_title("Topic \"%s\": %d registrants (red), %d searcher->registrant finds\n(node 0 = bootnode)" % (
        nodes[0].topic, len(registrants), lines))
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_v5(n_nodes: int = 16, registrants: int = 4, timeout: float = 240.0, out_dir: str = "demo-output",
           out=sys.stdout, plots: bool = True, topic: str = "chat") -> int:
    """The v5 topic demo; 0 when every searcher found all registrants but at most one."""
    if n_nodes < 3 or not 1 <= registrants < n_nodes:
        out.write("demo: --v5 needs at least 3 nodes and 1 <= registrants < nodes\n")
        return 2
    threads_before = set(threading.enumerate())
    t0 = time.monotonic()
    boot = V5Node(0, None, topic, False)
    nodes = [boot]
    bootnode = boot.net.tab.self
    out.write("v5 bootnode %s\n" % bootnode)
    ok = False
    try:
        for i in range(1, n_nodes):
            nodes.append(V5Node(i, bootnode, topic, i <= registrants))
        reg_ids = {bytes(n.net.tab.self.id) for n in nodes if n.register}
        searchers = nodes[1:]
        for node in nodes:
            node.start(t0)
        want = max(1, registrants - 1)
        stop = threading.Event()
        while True:
            got = [len(set(n.found_ids()) & reg_ids) for n in searchers]
            sizes = []
            for n in nodes:
                sizes.append(n.net.tab.count)
            out.write("[%5.1fs] v5 nodes %d  table mean %4.1f  registrants found: mean %.1f min %d of %d\n" % (
                time.monotonic() - t0, n_nodes, sum(sizes) / len(sizes), sum(got) / len(got), min(got),
                registrants))
            out.flush()
            if min(got) >= want:
                ok = True
                break
            if time.monotonic() - t0 >= timeout:
                break
            stop.wait(1.0)  # the once-a-second progress tick
        elapsed = time.monotonic() - t0
        if plots:
            os.makedirs(out_dir, exist_ok=True)
            plot_topic(nodes, reg_ids, os.path.join(out_dir, "topic.png"))
            out.write("picture: %s\n" % os.path.join(out_dir, "topic.png"))
    finally:
        for node in nodes:
            node.stop()
    for t in [t for t in threading.enumerate() if t not in threads_before]:
        t.join(5.0)
    left = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    if left:
        out.write("demo: threads still running after stop: %s\n" % ", ".join(sorted(left)))
        return 1
    if not ok:
        out.write("demo: FAILED: in %.0fs not every searcher found %d of the %d registrants\n" % (
            timeout, want, registrants))
        return 1
    out.write("demo v5 ok: %d nodes, every searcher found %d of %d registrants of %r in %.1fs, all threads stopped\n" % (
        n_nodes, want, registrants, topic, elapsed))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m p2p.cmd.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version=version_string("demo"))
    ap.add_argument("--nodes", type=int, default=16, help="number of nodes, bootnode included (default 16)")
    ap.add_argument("--timeout", type=float, default=40.0, help="seconds allowed to converge (default 40)")
    ap.add_argument("--maxpeers", type=int, default=10, help="MaxPeers of every node (default 10)")
    ap.add_argument("--out", default="demo-output", help="folder for the pictures (default demo-output)")
    ap.add_argument("--no-plots", action="store_true", help="skip the pictures")
    ap.add_argument("--verbosity", type=int, default=1, help="log level 0..5 (default 1: errors)")
    ap.add_argument("--v5", action="store_true", help="topic discovery (discv5) instead of a devp2p network")
    ap.add_argument("--registrants", type=int, default=4, help="with --v5: nodes that register the topic (default 4)")
    args = ap.parse_args(argv)
    set_verbosity(args.verbosity)
    if args.v5:
        ntp_was = ntp.ntpPool
        ntp.ntpPool = "127.0.0.1"
        try:
            return run_v5(args.nodes, args.registrants, args.timeout if args.timeout != 40.0 else 240.0,
                          args.out, plots=not args.no_plots)
        finally:
            ntp.ntpPool = ntp_was
    return run(args.nodes, args.timeout, args.out, max_peers=args.maxpeers, plots=not args.no_plots)


if __name__ == "__main__":
    sys.exit(main())
