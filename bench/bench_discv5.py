"""Discovery v5 benchmarks: packet encode+sign and decode+recover, memory per idle node.

The codec rates are measured against the raw libsecp256k1 (coincurve) sign and
recover of the same hash, in alternating slices of this thread's CPU time
(bench/timing.py), so the ratio shows what the framing and RLP cost on top of the
signature. The memory figure is the resident-size growth of this process per
discv5 Network on loopback, after they have bonded with one bootstrap node.
"""

import gc
import os
import threading
import time

from bench.timing import cpu_rates
from p2p import crypto
from p2p.discv5 import udp as v5udp

SECONDS = float(os.environ.get("BENCH_DISCV5_SECONDS", "1.0"))
MEMORY_NODES = int(os.environ.get("BENCH_DISCV5_NODES", "20"))


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
    bench_codec(report)
    bench_memory(report)
