"""A flood of fresh discovery v5 identities against one node, over loopback.

:class:`Flooder` speaks raw v5 packets from one UDP socket on 127.0.0.1, with a
fresh key per identity. ``bond`` pings the victim and answers the ping it sends
back, so the victim calls the identity ``known``; ``register`` then sends a
topicRegister with the ticket of the victim's pong before its wait period is over
(the victim refuses the registration but keeps a record of the identity in its
topic table). After that the identity goes silent: it never answers again.

Used by tests/discv5/test_net.py and test_topic.py (small sizes), and for the
figures (memory with tracemalloc, threads, time; not part of ``make test``)::

    python -m tests.discv5.flood --ids 20000 --max-nodes 4200   # bond and go silent
    python -m tests.discv5.flood --topic --seconds 60 --max-infos 10000 --max-nodes 14200

(the bounds: ``maxNodesBeforeSweep`` 4096 beyond the nodes in use, which are the
bucket and its replacements, and with ``--topic`` the ``maxIdleNodeInfos`` 10,000
records of the topic table).
"""

import argparse
import os
import socket
import sys
import threading
import time
import tracemalloc

os.environ.setdefault("GETHP2P_NTP_POOL", "127.0.0.1")  # the clock check asks loopback only

from p2p import crypto  # noqa: E402
from p2p.discv5 import udp  # noqa: E402
from p2p.discv5.node import logdist, pubkey_id  # noqa: E402
from p2p.discv5.nodeevent_string import (  # noqa: E402
    findnodeHashPacket, neighborsPacket, pingPacket, pongPacket, topicRegisterPacket,
)

_LOOPBACK = udp._ip(bytes([127, 0, 0, 1]))


def start_victim(db_path="<no database>"):
    """A discv5 Network on a fresh loopback socket."""
    from p2p.discover.udp import UDPConn

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return udp.listen_udp(crypto.generate_key(), UDPConn(sock), sock.getsockname(), db_path)


class Flooder:
    """Fresh identities on one loopback socket, talking to the node ``victim`` (a discv5 Node)."""

    def __init__(self, victim, timeout=5.0):
        self.victim = victim
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        port = self.sock.getsockname()[1]
        self.frm = udp.RpcEndpoint(ip=_LOOPBACK, udp=port, tcp=port)
        self.to = udp.RpcEndpoint(ip=_LOOPBACK, udp=victim.udp, tcp=victim.udp)
        self.failed = 0  # identities that did not bond (a lost datagram): replaced by fresh ones

    def close(self):
        self.sock.close()

    def identity(self, bucket=None):
        """A fresh key; with ``bucket``, one whose node falls in that bucket of the victim's table."""
        while True:
            k = crypto.generate_key()
            if bucket is None or logdist(self.victim.sha, crypto.keccak256(pubkey_id(k.public_key))) == bucket:
                return k

    def _recv(self, deadline):
        """The next datagram from the victim (bytes), or None at ``deadline``."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                return None
            if addr[1] == self.victim.udp and len(data) > udp.headSize:
                return data

    def bond(self, key, topics=(), timeout=30.0):
        """Ping from ``key`` and answer the victim's ping back; the raw pong (the ticket), or None.

        The victim answers a ping from an unknown node with a pong and, at once, a
        ping of its own: the first ping after our pong is ours to answer (pings that
        arrive earlier are to silent identities, which stay silent).
        """
        ping, h = udp.encode_packet(key, pingPacket, udp.Ping(from_=self.frm, to=self.to, expiration=2 ** 40,
                                                              topics=list(topics)))
        deadline = time.monotonic() + timeout
        pong = None
        while pong is None:
            if time.monotonic() >= deadline:
                self.failed += 1
                return None
            self.sock.sendto(ping, self.victim.addr())
            while pong is None:
                data = self._recv(min(deadline, time.monotonic() + 1.0))
                if data is None:
                    break  # lost: send the ping again
                if data[udp.headSize] == int(pongPacket) and h in data:
                    pong = data
        while True:
            data = self._recv(min(deadline, time.monotonic() + 2.0))
            if data is None:
                self.failed += 1  # the victim's ping was lost: give this identity up
                return None
            if data[udp.headSize] == int(pingPacket):
                break
        reply_tok = crypto.keccak256(data[udp.versionPrefixSize:])
        pkt, _ = udp.encode_packet(key, pongPacket, udp.Pong(to=self.to, reply_tok=reply_tok, expiration=2 ** 40))
        self.sock.sendto(pkt, self.victim.addr())
        return pong

    def register(self, key, pong, topics, idx=0):
        """Send a topicRegister of ``topics[idx]`` with the ticket ``pong`` (no reply comes)."""
        pkt, _ = udp.encode_packet(key, topicRegisterPacket, udp.TopicRegister(topics=list(topics), idx=idx,
                                                                               pong=pong))
        self.sock.sendto(pkt, self.victim.addr())

    def findnode(self, key, timeout=30.0) -> bool:
        """Ask the victim for neighbours as ``key``: True if it answered (it does only to bonded nodes)."""
        pkt, _ = udp.encode_packet(key, findnodeHashPacket, udp.FindnodeHash(target=os.urandom(32),
                                                                             expiration=2 ** 40))
        self.sock.sendto(pkt, self.victim.addr())
        deadline = time.monotonic() + timeout
        while True:
            data = self._recv(deadline)
            if data is None:
                return False
            if data[udp.headSize] == int(neighborsPacket):
                return True


def flood(net, fl, n=None, seconds=None, topic=None, bucket=None, keys=None):
    """Bond ``n`` fresh identities (or as many as fit in ``seconds``), each then silent.

    With ``topic``, each also sends a premature topicRegister of it. ``keys``, if a
    list, gets the keys used. Returns the number of identities that bonded.
    """
    topics = [topic] if topic is not None else []
    done = 0
    end = time.monotonic() + seconds if seconds is not None else None
    while (n is None or done < n) and (end is None or time.monotonic() < end):
        k = fl.identity(bucket)
        pong = fl.bond(k, topics)
        if pong is None:
            continue
        if topic is not None:
            fl.register(k, pong, topics)
        if keys is not None:
            keys.append(k)
        done += 1
    return done


def census(net):
    """(len(Network.nodes), len(TopicTable.nodes), table count) read on the loop thread."""
    res = []
    net.req_table_op(lambda: res.append((len(net.nodes), len(net.topictab.nodes), net.tab.count)))
    return res[0]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.discv5.flood", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=None, help="identities to bond (default: as many as --seconds allows)")
    ap.add_argument("--seconds", type=float, default=None, help="flood for this long (default 60 without --ids)")
    ap.add_argument("--topic", action="store_true", help="each identity also sends a premature topicRegister")
    ap.add_argument("--bucket", type=int, default=256, help="identities in this bucket of the victim (0: any)")
    ap.add_argument("--db", action="store_true", help="give the victim a temporary node database")
    ap.add_argument("--max-nodes", type=int, default=None,
                    help="at most this many Network.nodes after the flood (exit status 1 otherwise)")
    ap.add_argument("--max-infos", type=int, default=None,
                    help="at most this many TopicTable.nodes after the flood (exit status 1 otherwise)")
    args = ap.parse_args(argv)
    if args.ids is None and args.seconds is None:
        args.seconds = 60.0

    threads0 = threading.active_count()
    tracemalloc.start()
    net = start_victim("" if args.db else "<no database>")
    fl = Flooder(net.tab.self)
    try:
        mem0 = tracemalloc.get_traced_memory()[0]
        t0 = time.monotonic()
        done = flood(net, fl, n=args.ids, seconds=args.seconds, topic="flood" if args.topic else None,
                     bucket=args.bucket or None)
        elapsed = time.monotonic() - t0
        threads = threading.active_count()
        nodes, infos, tab = census(net)
        mem = tracemalloc.get_traced_memory()
        print("%d identities bonded%s in %.1f s (%.0f/s; %d lost and replaced)" % (
            done, " and sent a topicRegister" if args.topic else "", elapsed, done / elapsed, fl.failed))
        print("victim: Network.nodes=%d TopicTable.nodes=%d table=%d threads=%d (before the victim: %d)" % (
            nodes, infos, tab, threads, threads0))
        print("traced memory: %+.1f MiB since the victim started (peak %.1f MiB)" % (
            (mem[0] - mem0) / 2 ** 20, mem[1] / 2 ** 20))
        if args.db:
            keys = []
            net.req_table_op(lambda: keys.append(sum(1 for _ in net.db.lvl.iterator(include_value=False))))
            print("node database: %d keys" % keys[0])
        sys.stdout.flush()
        ok = (args.max_nodes is None or nodes <= args.max_nodes) and (args.max_infos is None or infos <= args.max_infos)
        print("bounds (--max-nodes %s, --max-infos %s): %s" % (args.max_nodes, args.max_infos, "OK" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        tracemalloc.stop()
        fl.close()
        net.close()


if __name__ == "__main__":
    sys.exit(main())
