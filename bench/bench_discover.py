"""Discovery v4 benchmarks: packet encode+sign, decode+recover, loopback ping->pong.

The raw libsecp256k1 (coincurve) sign and recover rates are measured in the same
run and reported as the limits the discv4 codec rates are compared with.
"""

import os
import queue
import shutil
import tempfile
import threading
import time

from p2p import crypto
from p2p.discover import udp as udpmod

DURATION = float(os.environ.get("BENCH_DISCOVER_SECONDS", "1.0"))


def _rates(fns, duration=DURATION * 0.5, rounds=25, clock=time.thread_time):
    """Calls per second of each function.

    The functions are timed in alternating short slices and the best slice of each
    counts, so that load from other processes hits all of them alike and the
    ratios between them stay meaningful. The clock is this thread's CPU time, so
    that preemption by other processes costs nothing (see bench/timing.py).
    """
    best = [0.0] * len(fns)
    slice_ = duration / rounds
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            n = 0
            t0 = clock()
            end = t0 + slice_
            while True:
                for _ in range(10):
                    fn()
                n += 10
                t = clock()
                if t >= end:
                    break
            best[i] = max(best[i], n / (t - t0))
    return best


def _ping_packet(key):
    ep = udpmod.RpcEndpoint(udpmod._addr_ip(("127.0.0.1", 0)), 30303, 30303)
    return udpmod.Ping(4, ep, udpmod.RpcEndpoint(ep.ip, 30304, 0), int(time.time()) + 3600)


def bench_codec(report):
    import coincurve

    key = crypto.generate_key()
    req = _ping_packet(key)
    packet, _ = udpmod.encode_packet(key, udpmod.pingPacket, req)
    # The ping as this node sends it: EIP-868's record seq after the expiration.
    req_seq = _ping_packet(key)
    req_seq.rest = [udpmod.encode_uint(1)]
    packet_seq, _ = udpmod.encode_packet(key, udpmod.pingPacket, req_seq)
    body_hash = crypto.keccak256(packet[udpmod.headSize:])
    sig = packet[udpmod.macSize:udpmod.headSize]

    cc_key = coincurve.PrivateKey(key.secret)
    with crypto.use_backend("coincurve"):
        raw_sign, enc = _rates([
            lambda: cc_key.sign_recoverable(body_hash, hasher=None),
            lambda: udpmod.encode_packet(key, udpmod.pingPacket, req),
        ])
        raw_recover, dec, dec_seq = _rates([
            lambda: coincurve.PublicKey.from_signature_and_message(
                sig, body_hash, hasher=None).format(compressed=False),
            lambda: udpmod.decode_packet(packet),
            lambda: udpmod.decode_packet(packet_seq),
        ])
    _, _, _, err = udpmod.decode_packet(packet)
    assert err is None, err
    report.add("discover", "raw coincurve sign", raw_sign, "ops/s")
    report.add("discover", "raw coincurve recover", raw_recover, "ops/s")
    report.add("discover", "discv4 ping encode+sign", enc, "packets/s", limit=raw_sign,
               limit_name="raw sign")
    report.add("discover", "discv4 ping decode+recover", dec, "packets/s", limit=raw_recover,
               limit_name="raw recover")
    report.add("discover", "discv4 ping+seq (EIP-868) decode+recover", dec_seq, "packets/s",
               limit=raw_recover, limit_name="raw recover")
    return enc, dec


def bench_ping_pong(report, nclients=4, seconds=None, codec=None):
    """Ping a running node from several client sockets; count the pongs per second.

    ``codec`` is ``(encode+sign rate, decode+recover rate)``: the node decodes each
    ping, signs a pong and, as the clients never answer its pings, signs a ping back
    to them (a sender it has not heard a pong from); that is the limit.
    """
    seconds = DURATION * 2 if seconds is None else seconds
    tmp = tempfile.mkdtemp(prefix="bench-discover-")
    server_conn = udpmod.UDPConn.listen("127.0.0.1", 0)
    tab = udpmod.listen_udp(server_conn, udpmod.Config(private_key=crypto.generate_key()))
    # The clients never answer the node's pings, so its pings time out by the hundred
    # and it would start geth's clock drift check, an SNTP query to pool.ntp.org.
    # A bench sends nothing off this machine: the check is replaced, as in the tests.
    tab.net.check_clock_drift = lambda: None
    saddr = server_conn.local_addr()
    stop = threading.Event()
    counts = queue.Queue()

    def client():
        import socket

        key = crypto.generate_key()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        port = s.getsockname()[1]
        ep = udpmod.RpcEndpoint(udpmod._addr_ip(("127.0.0.1", 0)), port, port)
        to = udpmod.RpcEndpoint(ep.ip, saddr[1], 0)
        # One signed ping, sent again and again: the client side costs little CPU,
        # so the figure is the node's (all in one process, sharing the GIL).
        pkt, _ = udpmod.encode_packet(key, udpmod.pingPacket,
                                      udpmod.Ping(4, ep, to, int(time.time()) + 600))
        n = 0
        window = 8  # pings in flight per client
        try:
            inflight = 0
            while not stop.is_set():
                while inflight < window:
                    s.sendto(pkt, saddr)
                    inflight += 1
                try:
                    data, _ = s.recvfrom(2048)
                except OSError:
                    inflight = 0  # lost some; start a new window
                    continue
                if len(data) > udpmod.headSize and data[udpmod.headSize] == udpmod.pongPacket:
                    n += 1
                    inflight -= 1
        finally:
            s.close()
            counts.put(n)

    threads = [threading.Thread(target=client, name="bench.discover.client", daemon=True)
               for _ in range(nclients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(5)
    elapsed = time.perf_counter() - t0
    total = sum(counts.get() for _ in threads)
    tab.close()
    shutil.rmtree(tmp, ignore_errors=True)
    limit = 1.0 / (1.0 / codec[1] + 2.0 / codec[0]) if codec else None
    report.add("discover", "loopback ping->pong (%d clients)" % nclients, total / elapsed,
               "pongs/s", limit=limit, limit_name="1 decode + 2 encodes")


def run(report):
    codec = bench_codec(report)
    bench_enr(report)
    bench_ping_pong(report, codec=codec)


def bench_enr(report):
    """ENR (EIP-778) decode+verify of a record like EIP-778's example, beside raw verify.

    Raw verify is libsecp256k1 (coincurve) parsing the 33-byte key and checking a
    DER signature: the least any record verification must do.
    """
    import coincurve

    from p2p import enr
    from p2p.crypto import _der_signature

    key = crypto.hex_to_ecdsa("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
    r = enr.Record()
    r.set(enr.IP("127.0.0.1"))
    r.set(enr.UDP(30303))
    r.set(enr.TCP(30303))
    enr.sign_v4(r, key)
    blob = r.encode_rlp()
    h = crypto.keccak256(enr.enr._rlp_list(r.append_elements([])))
    pub33 = crypto.compress_pubkey(key.public_key)
    der = _der_signature(int.from_bytes(r.signature[:32], "big"), int.from_bytes(r.signature[32:], "big"))

    def decode():
        enr.Record().decode_rlp(blob)

    with crypto.use_backend("coincurve"):
        raw_verify, dec = _rates([
            lambda: coincurve.PublicKey(pub33).verify(der, h, hasher=None),
            decode,
        ])
    report.add("discover", "raw coincurve verify", raw_verify, "ops/s")
    report.add("discover", "ENR decode+verify", dec, "records/s", limit=raw_verify,
               limit_name="raw verify")
