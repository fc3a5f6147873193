"""Discovery v5 benchmarks: packet encode+sign and decode+recover, memory per idle node.

The codec rates are measured against the raw libsecp256k1 (coincurve) sign and
recover of the same hash, in alternating slices of this thread's CPU time
(bench/timing.py), so the ratio shows what the framing and RLP cost on top of the
signature. The memory figure is the resident-size growth of this process per
discv5 Network on loopback, after they have bonded with one bootstrap node.

``Table.closest`` (run for every findnode / findnodeHash packet answered and every
lookup) is timed on a table of ``CLOSEST_BUCKETS`` full buckets (the 17 farthest
log distances, as many entries as discovery v4's full table holds), against v4's
``Table.closest`` over the same node hashes, in alternating slices; and the whole
CPU cost of answering a findnodeHash on that table (decode+recover, closest, the
signed neighbors replies) against the same without closest.
"""

import gc
import ipaddress
import os
import random
import threading
import time

from bench.timing import cpu_rates
from p2p import crypto
from p2p.discv5 import udp as v5udp

SECONDS = float(os.environ.get("BENCH_DISCV5_SECONDS", "1.0"))
MEMORY_NODES = int(os.environ.get("BENCH_DISCV5_NODES", "20"))
CLOSEST_BUCKETS = 17  # v4's nBuckets: 17 * bucketSize = 272 entries


def _packets():
    ip = v5udp._to_ip("127.0.0.1")
    ping = v5udp.Ping(4, v5udp.RpcEndpoint(ip, 30303, 30303), v5udp.RpcEndpoint(ip, 30304, 30304),
                      int(time.time()) + 3600, ["chat"])
    nodes = [v5udp.RpcNode(ip, 30303 + i, 30303 + i, v5udp.NodeID(os.urandom(64)))
             for i in range(v5udp.maxTopicNodes)]
    return [("ping", v5udp.pingPacket, ping), ("topicNodes (12 nodes)", v5udp.topicNodesPacket,
                                                v5udp.TopicNodes(bytes(32), nodes))]


def bench_codec(report, seconds=SECONDS):
    import coincurve

    key = crypto.generate_key()
    cc_key = coincurve.PrivateKey(key.secret)
    with crypto.use_backend("coincurve"):
        for name, ptype, req in _packets():
            packet, _ = v5udp.encode_packet(key, ptype, req)
            body_hash = crypto.keccak256(packet[v5udp.headSize:])
            sig = packet[v5udp.versionPrefixSize:v5udp.headSize]

            def decode(packet=packet):
                v5udp.decode_packet(packet, v5udp.IngressPacket())

            raw_sign, enc = cpu_rates([
                lambda: cc_key.sign_recoverable(body_hash, hasher=None),
                lambda: v5udp.encode_packet(key, ptype, req),
            ], seconds)
            raw_recover, dec = cpu_rates([
                lambda: coincurve.PublicKey.from_signature_and_message(
                    sig, body_hash, hasher=None).format(compressed=False),
                decode,
            ], seconds)
            report.add("discv5", "discv5 %s encode+sign" % name, enc, "packets/s", limit=raw_sign,
                       limit_name="raw sign")
            report.add("discv5", "discv5 %s decode+recover" % name, dec, "packets/s", limit=raw_recover,
                       limit_name="raw recover")


def _full_tables(rng):
    """A discv5 Table with CLOSEST_BUCKETS full buckets, and a v4 Table with the same hashes."""
    from p2p.discover import node as v4node, table as v4table
    from p2p.discv5 import node as v5node, table as v5table

    tab5 = v5table.new_table(v5node.NodeID(rng.randbytes(64)), ("127.0.0.1", 30303))
    # v4's Table without its loop or database: closest only reads the buckets.
    tab4 = v4table.Table(None, v4node.Node(id=v4node.NodeID(bytes(tab5.self.id)), sha=tab5.self.sha), None)
    for i in range(CLOSEST_BUCKETS):
        ld = v5table.hashBits - i
        for j in range(v5table.bucketSize):
            sha = v5node.hash_at_distance(tab5.self.sha, ld, rng)
            nid = rng.randbytes(64)
            ip = ipaddress.ip_address("10.%d.%d.1" % (i, j))
            tab5.buckets[ld].entries.append(v5node.Node(ip, 30303, 30303, v5node.NodeID(nid), sha))
            tab4.buckets[v4table.nBuckets - 1 - i].entries.append(
                v4node.Node(ip, 30303, 30303, v4node.NodeID(nid), sha))
            tab5.count += 1
    return tab5, tab4


def bench_closest(report, seconds=SECONDS, seed=1):
    from p2p.discover import table as v4table
    from p2p.discv5 import table as v5table

    rng = random.Random(seed)
    tab5, tab4 = _full_tables(rng)
    targets = [rng.randbytes(32) for _ in range(64)]
    for t in targets:  # the same answer from both (the hashes are the same)
        assert ([n.sha for n in tab5.closest(t, v5table.bucketSize).entries]
                == [n.sha for n in tab4.closest(t, v4table.bucketSize).entries])
    it4, it5 = iter(targets * 10 ** 6), iter(targets * 10 ** 6)
    r4, r5 = cpu_rates([
        lambda: tab4.closest(next(it4), v4table.bucketSize),
        lambda: tab5.closest(next(it5), v5table.bucketSize),
    ], seconds)
    report.add("discv5", "Table.closest, %d entries, 16 results" % tab5.count, r5, "calls/s", limit=r4,
               limit_name="v4 Table.closest")


def bench_findnode_hash_answer(report, seconds=SECONDS, seed=2):
    """What answering one findnodeHash costs the Network loop, without the socket.

    Decode+recover the request, ``Table.closest`` on the full table, then frame and
    sign the neighbors replies as ``send_neighbours`` does. The limit is the same
    codec work with the answer already known (no closest).
    """
    from p2p.discv5 import table as v5table

    rng = random.Random(seed)
    tab5, _ = _full_tables(rng)
    key = crypto.generate_key()
    packets = [v5udp.encode_packet(key, v5udp.findnodeHashPacket, v5udp.FindnodeHash(
        rng.randbytes(32), int(time.time()) + 3600))[0] for _ in range(64)]
    fixed = tab5.closest(bytes(32), v5table.bucketSize).entries

    def answer(packet, results=None):
        pkt = v5udp.IngressPacket()
        v5udp.decode_packet(packet, pkt)
        if results is None:
            results = tab5.closest(pkt.data.target, v5table.bucketSize).entries
        p = v5udp.Neighbors(expiration=int(time.time() + v5udp.expiration))
        for i, result in enumerate(results):
            p.nodes.append(v5udp.node_to_rpc(result))
            if len(p.nodes) == v5udp.maxNeighbors or i == len(results) - 1:
                v5udp.encode_packet(key, v5udp.neighborsPacket, p)
                p.nodes = []

    it1, it2 = iter(packets * 10 ** 6), iter(packets * 10 ** 6)
    with crypto.use_backend("coincurve"):
        codec, full = cpu_rates([lambda: answer(next(it1), fixed), lambda: answer(next(it2))], seconds)
    report.add("discv5", "findnodeHash answered (decode, closest, 2 replies)", full, "packets/s",
               limit=codec, limit_name="same, no closest")


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def bench_memory(report, n=MEMORY_NODES, settle=5.0):
    from p2p.discover.udp import UDPConn

    gc.collect()
    before = _rss_mib()
    threads_before = threading.active_count()
    nets = []
    try:
        for _ in range(n):
            c = UDPConn.listen("127.0.0.1", 0)
            nets.append(v5udp.listen_udp(crypto.generate_key(), c, c.local_addr(), ""))
        for net in nets[1:]:
            net.set_fallback_nodes([nets[0].self_node()])
        # Let them bond with the bootstrap node (pings, pongs, a refresh lookup).
        threading.Event().wait(settle)
        gc.collect()
        per_node = (_rss_mib() - before) / n
        threads = (threading.active_count() - threads_before) / n
    finally:
        closers = [threading.Thread(target=net.close, name="bench.discv5.close") for net in nets]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
    report.add("discv5", "RSS per idle discv5 node (%d on loopback)" % n, per_node, "MiB")
    report.add("discv5", "threads per discv5 node", threads, "threads")


def run(report):
    bench_closest(report)
    bench_findnode_hash_answer(report)
    bench_codec(report)
    bench_memory(report)
